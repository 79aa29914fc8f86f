import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GenerateResult,
  generateStream,
  initBackend,
  LlavaForConditionalGeneration,
} from '@vistune/core';
import {
  drawBoxes,
  LisaSegHead,
  type LocationCodec,
  type MaskSummary,
  maskSummary,
  overlayMasks,
  segmentAnswer,
} from '@vistune/tasks-grounding';
import { type Command, Option } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { backendOption } from '../program.js';
import {
  decoderOf,
  generateOptions,
  generationInputs,
  loadModelDir,
  preparePrompt,
  type SamplingFlags,
  userMessage,
} from '../runtime.js';
import { CliError, printJson } from '../ui.js';

/** Sampling flags shared by generate and chat. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-new-tokens <n>', 'tokens to generate at most', '128')
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', '0')
    .option('--top-p <p>', 'nucleus sampling: keep the smallest set of tokens with probability ≥ p')
    .option('--top-k <k>', 'sample among the k most likely tokens')
    .option('--repetition-penalty <r>', 'HF repetition penalty (> 1 discourages repeats)')
    .option('--seed <n>', 'random seed for sampling')
    .option('--stop <text...>', 'stop when the output contains this text')
    .addOption(new Option('--no-eos', 'do not stop at the end-of-sequence token'));
}

interface GenerateFlags extends SamplingFlags {
  codec?: string;
  overlay?: string;
  model: string;
  prompt: string;
  image?: string[];
  json?: boolean;
}

export function registerGenerateCommand(program: Command): void {
  addSamplingOptions(
    program
      .command('generate')
      .description("Answer one prompt (with images) using the model's chat template; streams the text")
      .requiredOption('--model <dir>', 'Hugging Face-format model folder (LLaVA or LLaMA-family)')
      .requiredOption('--prompt <text>', 'the user message')
      .option('--image <path...>', 'image file(s) (PNG/JPEG/WebP), placed before the text in order'),
  )
    .option(
      '--codec <name>',
      'parse boxes from the answer with this location codec (shikra, qwen_vl, minigpt_v2, kosmos2)',
    )
    .option(
      '--overlay <png>',
      'save the first image with the masks of a [SEG] head and (with --codec) the decoded boxes drawn',
    )
    .option(
      '--json',
      'print one JSON object {ids, text, prompt, inputIds, finishReason, boxes?, masks?} instead of streaming; masks (models with a [SEG] head): one {size: [h, w], area, bbox, counts} per [SEG], counts = COCO uncompressed RLE (column-major)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune generate --model ./tiny-llava --image cat.png --prompt "What is in the image?"\n  $ vistune generate --model ./tiny-llava --image a.png --prompt "Describe it" --temperature 0 --json',
    )
    .action(async (flags: GenerateFlags, cmd: Command) => {
      await initBackend({ backend: backendOption(cmd), quiet: true });
      const registry = await builtinRegistry();
      const codec = flags.codec
        ? ((await registry.create('codec', { type: flags.codec })) as LocationCodec)
        : undefined;
      const loaded = await loadModelDir(flags.model, registry);
      const segHead = segHeadOf(loaded.model);
      if (flags.overlay && !codec && !segHead) {
        loaded.model.dispose();
        throw new CliError(
          '--overlay needs --codec to know how boxes are written (or a model with a [SEG] mask head)',
          2,
        );
      }
      const images = flags.image ?? [];
      const prepared = await preparePrompt(loaded, [userMessage(flags.prompt, images.length)], images);
      const { input, dispose } = generationInputs(loaded, prepared);
      const opts = generateOptions(flags, loaded.tokenizer);
      let result: GenerateResult | undefined;
      let masks: Uint8Array[] = [];
      try {
        const stream = generateStream(decoderOf(loaded), input, opts);
        for (;;) {
          const next = await stream.next();
          if (next.done) {
            result = next.value;
            break;
          }
          if (!flags.json && next.value.text) process.stdout.write(next.value.text);
        }
        // A [SEG] head: one mask per generated [SEG], from a second pass over prompt + answer (LISA's inference).
        const transform = prepared.transforms[0];
        if (segHead && result && transform && loaded.model instanceof LlavaForConditionalGeneration) {
          const frame = {
            width: transform.steps.originalWidth,
            height: transform.steps.originalHeight,
            transform,
          };
          masks = segmentAnswer(
            loaded.model,
            segHead,
            prepared.inputIds,
            result.ids[0] ?? [],
            { [segHead.options.modality]: [prepared.images] },
            frame,
          );
        }
      } finally {
        dispose();
        loaded.model.dispose();
      }
      if (!result) throw new Error('generation ended without a result');
      const ids = result.ids[0];
      const text = loaded.tokenizer.decode(ids, { skipSpecialTokens: true });
      const located =
        codec && prepared.transforms[0] ? codec.decodeAll(text, prepared.transforms[0]) : undefined;
      const transform = prepared.transforms[0];
      const summaries: MaskSummary[] = transform
        ? masks.map((m) => maskSummary(m, transform.steps.originalWidth, transform.steps.originalHeight))
        : [];
      if (flags.overlay && images[0]) {
        const boxes = (located?.boxes ?? []).map((box, i) => ({
          box,
          label: String(i + 1),
          color: 'red' as const,
        }));
        let base = images[0];
        if (masks.length) {
          // Masks are blended at the image's size, then drawBoxes upscales and outlines the boxes.
          base = join(tmpdir(), `vistune-masks-${process.pid}.png`);
          await overlayMasks(images[0], masks, base);
        }
        try {
          await drawBoxes(base, boxes, flags.overlay);
        } finally {
          if (base !== images[0]) await rm(base, { force: true });
        }
      }
      if (flags.json) {
        printJson({
          ids,
          text,
          prompt: prepared.prompt,
          inputIds: prepared.inputIds,
          finishReason: result.finishReason[0],
          ...(located
            ? { boxes: located.boxes, points: located.points, malformedBoxes: located.malformed }
            : {}),
          ...(segHead ? { masks: summaries } : {}),
        });
      } else {
        process.stdout.write('\n');
        if (located) {
          const bad = located.malformed ? ` (${located.malformed} malformed)` : '';
          process.stdout.write(`boxes: ${JSON.stringify(located.boxes)}${bad}\n`);
        }
        for (const [k, m] of summaries.entries())
          process.stdout.write(
            `mask ${k + 1}: ${m.area} px of ${m.size[1]}×${m.size[0]}, bbox ${JSON.stringify(m.bbox)}\n`,
          );
        if (flags.overlay) process.stdout.write(`overlay: ${flags.overlay}\n`);
      }
    });
}

/** The model's [SEG] mask head, when it has one. */
function segHeadOf(model: unknown): LisaSegHead | undefined {
  if (!(model instanceof LlavaForConditionalGeneration)) return undefined;
  return model.heads.find((h): h is LisaSegHead => h instanceof LisaSegHead);
}
