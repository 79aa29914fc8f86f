// The `lisa_seg` task family (registry kind `task`): what `vistune train` / `vistune eval` need to train and
// score a LISA-style [SEG] model on any composition with an image modality, without LISA code in the CLI.
//   task: { type: lisa_seg, token: '[SEG]', head: { readOffset: 0, decoder: { dim: 32 } } }
import {
  type AnswerMetric,
  normaliseAnswer,
  type ScoredAnswer,
  type TaskContext,
  type TaskFamily,
} from '@vistune/core';
import { z } from 'zod';
import { attachLisaHead, type LisaSegHeadSettings, SEG_TOKEN } from './model.js';
import { segmentationTargets } from './targets.js';

/** Head fields the task fills in from the tokenizer and the model (a recipe must not set them). */
const FILLED_HEAD_FIELDS = ['type', 'triggerTokenId', 'llmHiddenSize', 'visionHiddenSize'] as const;

export const lisaSegTaskSchema = z.strictObject({
  type: z.literal('lisa_seg').default('lisa_seg'),
  /** The mask token text, added to the tokenizer as a special token. */
  token: z.string().min(1).default(SEG_TOKEN),
  /** The `lisa_seg` head config (registry kind `head`; validated when the head is created). */
  head: z
    .record(z.string(), z.unknown())
    .default({})
    .superRefine((head, ctx) => {
      for (const key of FILLED_HEAD_FIELDS)
        if (key in head)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `filled in by the lisa_seg task (from the tokenizer and the model): remove task.head.${key}`,
          });
    }),
});
export type LisaSegTaskConfig = z.output<typeof lisaSegTaskSchema>;

export const lisaAnswerMatchSchema = z.object({
  /** Token text removed from both answers before comparing. */
  token: z.string().min(1).default(SEG_TOKEN),
});

/**
 * Exact match (VQA normalisation) of the answer text with the [SEG] text removed from both sides: eval decodes
 * predictions without special tokens, so a generated [SEG] never shows in the prediction while the reference
 * holds it literally (plain exact_match would score every segmentation answer 0).
 */
export function lisaAnswerMatch(token: string = SEG_TOKEN): AnswerMetric {
  const strip = (text: string) => normaliseAnswer(text.split(token).join(' '));
  return {
    name: 'lisa_answer_match',
    score: (a: ScoredAnswer) => (strip(a.prediction) === strip(a.reference) ? 1 : 0),
  };
}

/** The head name the task's targets are keyed by. */
function headName(config: LisaSegTaskConfig): string {
  return typeof config.head.name === 'string' ? config.head.name : 'lisa_seg';
}

/** The token's id in the tokenizer prepareModel extended, or an error naming the fix. */
function segTokenId(config: LisaSegTaskConfig, ctx: TaskContext): number {
  const id = ctx.tokenizer.tokenToId(config.token);
  if (id === undefined)
    throw new Error(
      `task lisa_seg: the tokenizer has no ${config.token} token: run the task's prepareModel first (it adds the token), or load a model trained with it`,
    );
  return id;
}

/**
 * The task family: records carry one image; prepareModel adds [SEG] and the head (a model that already has the
 * head, e.g. loaded from a LISA folder, is kept); targets reads each record's `truth[].masks` (COCO RLE, one
 * per [SEG]); answers are scored on their text (masks need the model's second pass, which AnswerMetric does
 * not see: score them with evaluateSegmentation).
 */
export function lisaSegTask(config: LisaSegTaskConfig): TaskFamily {
  const name = headName(config);
  return {
    name: 'lisa_seg',
    media: ['image'],
    async prepareModel(ctx) {
      const existing = ctx.model.heads.find((h) => h.name === name);
      if (!existing) {
        const head = config.head as LisaSegHeadSettings;
        return (await attachLisaHead(ctx.model, ctx.tokenizer, ctx.registry, { head, token: config.token }))
          .model;
      }
      const id = segTokenId(config, ctx);
      if (existing.triggerTokenId !== id)
        throw new Error(
          `task lisa_seg: the model's head '${name}' is triggered by token ${existing.triggerTokenId} but the tokenizer's ${config.token} is ${id}: use the tokenizer saved with the model`,
        );
      return ctx.model;
    },
    targets: (ctx) => segmentationTargets(segTokenId(config, ctx), name),
    metrics: [{ type: 'lisa_answer_match', token: config.token }],
  };
}
