import { type GenerateResult, generateStream, initBackend } from '@vistune/core';
import { drawBoxes } from '@vistune/demo-world';
import type { LocationCodec } from '@vistune/tasks-grounding';
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
    .option('--overlay <png>', 'with --codec: save the first image with the decoded boxes drawn')
    .option(
      '--json',
      'print one JSON object {ids, text, prompt, inputIds, finishReason, boxes?} instead of streaming',
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
      if (flags.overlay && !codec)
        throw new CliError('--overlay needs --codec to know how boxes are written', 2);
      const loaded = await loadModelDir(flags.model, registry);
      const images = flags.image ?? [];
      const prepared = await preparePrompt(loaded, [userMessage(flags.prompt, images.length)], images);
      const { input, dispose } = generationInputs(loaded, prepared);
      const opts = generateOptions(flags, loaded.tokenizer);
      let result: GenerateResult | undefined;
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
      } finally {
        dispose();
        loaded.model.dispose();
      }
      if (!result) throw new Error('generation ended without a result');
      const ids = result.ids[0];
      const text = loaded.tokenizer.decode(ids, { skipSpecialTokens: true });
      const located =
        codec && prepared.transforms[0] ? codec.decodeAll(text, prepared.transforms[0]) : undefined;
      if (located && flags.overlay && images[0]) {
        const boxes = located.boxes.map((box, i) => ({ box, label: String(i + 1), color: 'red' as const }));
        await drawBoxes(images[0], boxes, flags.overlay);
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
        });
      } else {
        process.stdout.write('\n');
        if (located) {
          const bad = located.malformed ? ` (${located.malformed} malformed)` : '';
          process.stdout.write(`boxes: ${JSON.stringify(located.boxes)}${bad}\n`);
        }
        if (flags.overlay) process.stdout.write(`overlay: ${flags.overlay}\n`);
      }
    });
}
