import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AnswerAnnotation, AnswerAnnotator, MediaKind } from '@vistune/core';
import type { Command } from 'commander';
import { loadModel, type VisionLanguageModel, type VlmRequest } from '../api/model.js';
import {
  addAllowNonfiniteOption,
  addLmHeadOption,
  addMediaOptions,
  addPluginOption,
  addSamplingOptions,
  backendOption,
  commandRegistry,
  mediaFromFlags,
  type SamplingFlags,
  samplingOptions,
} from '../options.js';
import { CliError, printJson } from '../ui.js';

interface GenerateFlags extends SamplingFlags {
  lmHead: 'float32' | 'int8';
  codec?: string;
  overlay?: string;
  model: string;
  prompt: string;
  systemPrompt?: string;
  allowNonfinite?: boolean;
  json?: boolean;
  [kind: string]: unknown;
}

/** The user turn: one part per media item (in the order given, kind by kind), then the text. */
export function buildRequest(
  vlm: VisionLanguageModel,
  text: string,
  byKind: Readonly<Record<string, string[]>>,
  untyped: readonly string[],
  systemPrompt?: string,
): VlmRequest {
  const media: Record<string, string[]> = {};
  for (const [key, items] of Object.entries(byKind)) {
    const modality = vlm.modalityFor(key).name;
    media[modality] = [...(media[modality] ?? []), ...items];
  }
  for (const path of untyped) {
    const modality = vlm.modalityForFile(path).name;
    media[modality] = [...(media[modality] ?? []), path];
  }
  const parts = Object.entries(media).flatMap(([modality, items]) => items.map(() => ({ type: modality })));
  return {
    messages: [
      ...(systemPrompt === undefined ? [] : [{ role: 'system', content: systemPrompt }]),
      { role: 'user', content: [...parts, { type: 'text' as const, text }] },
    ],
    media,
  };
}

/** Draws every annotation that can draw over `image`, one after the other, into `out`. */
export async function drawAnnotations(
  image: string,
  annotations: readonly AnswerAnnotation[],
  out: string,
): Promise<void> {
  const drawers = annotations.filter((a) => a.draw);
  const work = await mkdtemp(join(tmpdir(), 'vistune-overlay-'));
  try {
    let current = image;
    for (const [i, a] of drawers.entries()) {
      const next = i === drawers.length - 1 ? out : join(work, `step-${i}.png`);
      await a.draw?.(current, next);
      current = next;
    }
    if (!drawers.length) await copyFile(image, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function registerGenerateCommand(program: Command, kinds: readonly MediaKind[]): void {
  const cmd = program
    .command('generate')
    .description("Answer one prompt (with media) using the model's chat template; streams the text")
    .requiredOption('--model <dir>', 'model folder (LLaVA-HF, a vistune composition, or a text-only LM)')
    .requiredOption('--prompt <text>', 'the user message')
    .option(
      '--system-prompt <text>',
      "system prompt (default: the one the model was trained with; '' for none)",
    );
  addMediaOptions(cmd, kinds);
  addPluginOption(cmd);
  addAllowNonfiniteOption(cmd);
  addLmHeadOption(cmd);
  addSamplingOptions(cmd)
    .option(
      '--codec <name>',
      'parse locations from the answer with this registered codec (vistune registry --kind codec)',
    )
    .option(
      '--overlay <png>',
      "save the first image with what the model's heads and the codec draw (masks, boxes)",
    )
    .option(
      '--json',
      'print one JSON object {ids, text, prompt, inputIds, finishReason, …} instead of streaming; heads and codecs add their fields (boxes, masks: COCO uncompressed RLE)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune generate --model ./tiny-llava --image cat.png --prompt "What is in the image?"\n  $ vistune generate --model ./my-3d-model --plugin vistune-plugin-points --media points=scan.ply --prompt "Describe it" --json',
    )
    .action(async (flags: GenerateFlags, command: Command) => {
      const registry = await commandRegistry(command);
      const codec = flags.codec
        ? ((await registry.create('codec', { type: flags.codec })) as Partial<AnswerAnnotator>)
        : undefined;
      if (codec && typeof codec.annotate !== 'function')
        throw new CliError(`codec '${flags.codec}' does not annotate answers (it has no annotate())`, 2);
      let vlm: VisionLanguageModel;
      try {
        vlm = await loadModel(flags.model, {
          registry,
          backend: backendOption(command),
          allowNonfinite: Boolean(flags.allowNonfinite),
          lmHead: flags.lmHead,
        });
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      try {
        const { byKind, untyped } = mediaFromFlags(flags, kinds);
        let request: VlmRequest;
        try {
          request = buildRequest(vlm, flags.prompt, byKind, untyped, flags.systemPrompt);
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
        const stream = vlm.stream(request, samplingOptions(flags));
        let next = await stream.next();
        for (; !next.done; next = await stream.next())
          if (!flags.json && next.value.text) process.stdout.write(next.value.text);
        const out = next.value;
        // The codec reads the answer text and the items' geometry (their tensors are already released).
        const located = await (codec as AnswerAnnotator | undefined)?.annotate({
          model: vlm.model,
          promptIds: out.inputIds,
          answerIds: out.ids,
          text: out.text,
          media: {},
          processed: out.processed,
        });
        const annotations = located ? [...out.annotations, located] : out.annotations;
        const firstImage = Object.values(request.media ?? {})[0]?.[0];
        if (flags.overlay) {
          if (!annotations.some((a) => a.draw))
            throw new CliError(
              '--overlay: nothing to draw (the model has no head that draws and no --codec was given)',
              2,
            );
          if (typeof firstImage !== 'string') throw new CliError('--overlay needs an image', 2);
          await drawAnnotations(resolve(firstImage), annotations, resolve(flags.overlay));
        }
        if (flags.json) {
          printJson({
            ids: out.ids,
            text: out.text,
            prompt: out.prompt,
            inputIds: out.inputIds,
            finishReason: out.finishReason,
            ...Object.assign({}, ...annotations.map((a) => a.json)),
          });
        } else {
          process.stdout.write('\n');
          for (const a of annotations) for (const line of a.lines) process.stdout.write(`${line}\n`);
          if (flags.overlay) process.stdout.write(`overlay: ${flags.overlay}\n`);
        }
      } finally {
        vlm.dispose();
      }
    });
}
