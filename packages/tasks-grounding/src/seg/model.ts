// A LISA-style model from any MultimodalModel with an image modality: [SEG] added to the tokenizer, the LLM's
// embedding rows grown to match, and the `lisa_seg` head attached to a new composition (same LLM weights,
// same modalities). Plus inference: masks for a given text, and generate-then-segment as LISA evaluates.
import {
  LlamaForCausalLM,
  LlavaForConditionalGeneration,
  type MediaInputs,
  type MultimodalBatch,
  MultimodalModel,
  type Registry,
  type Tokenizer,
  tf,
} from '@vistune/core';
import { resizeTokenEmbeddings } from '../vocab/index.js';
import type { LisaSegHeadInput } from './config.js';
import type { LisaSegHead, SegHeadOutput } from './head.js';
import { type OriginalFrame, toOriginalFrame } from './resample.js';

export const SEG_TOKEN = '[SEG]';

export interface AttachLisaHeadOptions {
  /** Head config (the registry fills the defaults); trigger id and sizes are filled in here. */
  head?: Omit<LisaSegHeadInput, 'triggerTokenId' | 'llmHiddenSize' | 'visionHiddenSize'>;
  /** The mask token text (default [SEG]). */
  token?: string;
}

export interface LisaModel {
  model: MultimodalModel;
  head: LisaSegHead;
  segTokenId: number;
}

/**
 * Adds [SEG] to `tokenizer` (special), resizes the LLM when the tokenizer outgrew it (the old LLM is then
 * disposed: do not use `base` afterwards), creates the `lisa_seg` head through `registry` reading the image
 * modality's encoder, and returns a new model holding the same modalities plus the head: a
 * LlavaForConditionalGeneration when `base` is one (saveLlava / loadLlava keep the head), else a MultimodalModel.
 */
export async function attachLisaHead(
  base: MultimodalModel,
  tokenizer: Tokenizer,
  registry: Registry,
  opts: AttachLisaHeadOptions = {},
): Promise<LisaModel> {
  const token = opts.token ?? SEG_TOKEN;
  const [segTokenId] = tokenizer.addTokens([token], { special: true }) as [number];
  const modality = opts.head?.modality ?? 'image';
  const spec = base.modalities.get(modality);
  if (!spec)
    throw new Error(
      `attachLisaHead: the model has no "${modality}" modality (it has ${[...base.modalities.keys()].join(', ') || 'none'}): set head.modality`,
    );
  if (!(base.llm instanceof LlamaForCausalLM))
    throw new Error('attachLisaHead: the LLM must be a LlamaForCausalLM (resizeTokenEmbeddings copies one)');
  const llm =
    tokenizer.vocabSize > base.llm.vocabSize
      ? resizeTokenEmbeddings(base.llm, tokenizer.vocabSize)
      : base.llm;
  const head = (await registry.create(
    'head',
    {
      type: 'lisa_seg',
      ...opts.head,
      triggerTokenId: segTokenId,
      llmHiddenSize: llm.hiddenSize,
      visionHiddenSize: spec.encoder.hiddenSize,
    },
    { path: 'head' },
  )) as LisaSegHead;
  head.bindVision(spec.encoder);
  const heads = [...base.heads, head];
  // A LLaVA stays a LLaVA (saveLlava writes it with its heads; loadLlava reads them back).
  const model =
    base instanceof LlavaForConditionalGeneration
      ? new LlavaForConditionalGeneration(
          { ...base.config, text: llm.config },
          llm,
          spec.encoder,
          spec.adapter,
          heads,
        )
      : new MultimodalModel({ llm, modalities: base.modalities, heads });
  if (llm !== base.llm) base.llm.dispose();
  model.train(base.training);
  return { model, head, segTokenId };
}

/** The last hidden states the head reads in `batch` ([K, llmHidden], sample-major), without running the head. */
export function triggerStates(
  model: MultimodalModel,
  head: LisaSegHead,
  batch: MultimodalBatch,
): tf.Tensor2D {
  return tf.tidy(() => {
    const embeds = model.embedInputs(batch.inputIds, batch.media, batch.attentionMask);
    const { hidden } = model.llm.forward({ inputsEmbeds: embeds, attentionMask: batch.attentionMask });
    const [B, T, H] = hidden.shape;
    const ids = batch.inputIds.dataSync();
    const rows: number[] = [];
    for (let i = 0; i < B * T; i++) {
      const p = (i % T) + head.readOffset;
      if (ids[i] === head.triggerTokenId && p >= 0) rows.push(Math.floor(i / T) * T + p);
    }
    return tf.gather(tf.reshape(hidden, [B * T, H]), tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
  });
}

/** Mask logits [K, H, W] (processed frame) for the [SEG] tokens already in `inputIds`, or null when none. */
export function segmentText(
  model: MultimodalModel,
  head: LisaSegHead,
  inputIds: tf.Tensor2D,
  media: MediaInputs,
  attentionMask?: tf.Tensor2D,
): tf.Tensor3D | null {
  const out = model.forward({ inputIds, media, attentionMask }, { logits: false });
  const result = out.heads[head.name]?.output as SegHeadOutput | undefined;
  const logits = result?.logits ?? null;
  // forward's tidy kept every head output: release all but the logits handed back.
  for (const r of Object.values(out.heads)) {
    const o = r.output as Record<string, tf.Tensor>;
    tf.dispose(Object.values(o).filter((t) => t !== logits));
    if (r.loss) r.loss.dispose();
  }
  for (const t of [out.loss, out.lmLoss, out.logits]) t?.dispose();
  return logits;
}

export interface GenerateSegmentation {
  /** Generated ids (prompt excluded) and their text when `decode` was given. */
  ids: number[];
  text?: string;
  /** One binary mask per generated [SEG], in the original frame (row-major, 1 = object). */
  masks: Uint8Array[];
}

/**
 * LISA's inference for one sample: generate the answer, then run the prompt + answer through the model once
 * more and decode a mask at every [SEG] the answer holds (the head reads states of the full sequence).
 */
export function generateAndSegment(
  model: MultimodalModel,
  head: LisaSegHead,
  promptIds: readonly number[],
  media: MediaInputs,
  frame: OriginalFrame,
  opts: { maxNewTokens?: number; eosTokenIds?: number[]; decode?: (ids: readonly number[]) => string } = {},
): GenerateSegmentation {
  const prompt = tf.tensor2d([promptIds as number[]], undefined, 'int32');
  let ids: number[];
  let text: string | undefined;
  try {
    const result = model.generate(prompt, media, opts);
    ids = result.ids[0] ?? [];
    text = result.text?.[0];
  } finally {
    prompt.dispose();
  }
  return { ids, text, masks: segmentAnswer(model, head, promptIds, ids, media, frame) };
}

/**
 * Masks of the [SEG] tokens of an answer: runs prompt + answer through the model once (the head reads states
 * of the full sequence, as LISA's inference) and thresholds the logits at 0 in the original frame. One binary
 * mask (row-major, frame.width × frame.height) per [SEG] of the answer; none when it has no [SEG].
 */
export function segmentAnswer(
  model: MultimodalModel,
  head: LisaSegHead,
  promptIds: readonly number[],
  answerIds: readonly number[],
  media: MediaInputs,
  frame: OriginalFrame,
): Uint8Array[] {
  if (!answerIds.includes(head.triggerTokenId)) return [];
  const full = tf.tensor2d([[...promptIds, ...answerIds]], undefined, 'int32');
  try {
    const logits = segmentText(model, head, full, media);
    if (!logits) return [];
    const [, H, W] = logits.shape;
    const original = tf.tidy(() => tf.greater(toOriginalFrame(logits, [H, W], frame), 0));
    logits.dispose();
    const values = original.dataSync();
    original.dispose();
    const size = frame.width * frame.height;
    // The prompt's own [SEG]s (if any) come first: keep the answer's, the last ones.
    const count = answerIds.filter((id) => id === head.triggerTokenId).length;
    const all = Array.from({ length: values.length / size }, (_, k) =>
      Uint8Array.from(values.subarray(k * size, (k + 1) * size)),
    );
    return all.slice(all.length - count);
  } finally {
    full.dispose();
  }
}
