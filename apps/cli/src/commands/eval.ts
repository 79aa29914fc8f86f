import { writeFile } from 'node:fs/promises';
import { initBackend, TEMPLATE_NAMES, type TemplateName } from '@vistune/core';
import { type Command, Option } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { evaluate, scoreByKind } from '../evaluate.js';
import { backendOption } from '../program.js';
import { generateOptions, loadModelDir } from '../runtime.js';
import { color, printJson, progress, table } from '../ui.js';

interface EvalFlags {
  model: string;
  data: string;
  images?: string;
  template: string;
  systemPrompt?: string;
  maxNewTokens: string;
  maxLength: string;
  limit?: string;
  out?: string;
  json?: boolean;
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      'Answer every assistant turn of a LLaVA-format split, save predictions, print exact match per kind',
    )
    .requiredOption('--model <dir>', 'model folder (LLaVA, HF layout)')
    .requiredOption('--data <file>', 'LLaVA JSON or JSONL with reference answers')
    .option('--images <dir>', "folder the records' image paths are relative to (default: the data file's)")
    .addOption(
      new Option('--template <name>', 'conversation template of the prompts')
        .choices([...TEMPLATE_NAMES])
        .default('hf'),
    )
    .option('--system-prompt <text>', "the template's system prompt ('' for none)")
    .option('--max-new-tokens <n>', 'tokens per answer at most', '32')
    .option('--max-length <n>', 'longest prompt (tokens, images expanded)', '2048')
    .option('--limit <n>', 'evaluate only the first n records')
    .option(
      '--out <file>',
      'write predictions as JSONL (id, turn, kind, question, prediction, reference, exactMatch)',
    )
    .option('--json', 'print the scores as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune eval --model runs/demo/model --data runs/demo/world/test.json --template vicuna_v1 --system-prompt ""\n  $ vistune eval --model DIR --data val.jsonl --limit 100 --out preds.jsonl --json',
    )
    .action(async (flags: EvalFlags, cmd: Command) => {
      await initBackend({ backend: backendOption(cmd), quiet: true });
      const loaded = await loadModelDir(flags.model, await builtinRegistry());
      const limit = flags.limit === undefined ? undefined : Number(flags.limit);
      const bar = flags.json ? undefined : progress('eval', limit ?? 0, ['em']);
      let correct = 0;
      let seen = 0;
      try {
        const predictions = await evaluate(loaded, {
          data: flags.data,
          imageFolder: flags.images,
          template: flags.template as TemplateName,
          systemPrompt: flags.systemPrompt,
          maxLength: Number(flags.maxLength),
          limit,
          generate: {
            ...generateOptions(
              { maxNewTokens: flags.maxNewTokens, temperature: '0', eos: true },
              loaded.tokenizer,
            ),
          },
          onPrediction: (p, done) => {
            seen++;
            if (p.exactMatch) correct++;
            bar?.update(done, { em: `${((100 * correct) / seen).toFixed(1)}%` });
          },
        });
        bar?.stop();
        if (flags.out)
          await writeFile(
            flags.out,
            predictions.map((p) => JSON.stringify(p)).join('\n') + (predictions.length ? '\n' : ''),
          );
        const scores = scoreByKind(predictions);
        if (flags.json) return printJson({ scores, predictions: flags.out ?? null });
        process.stdout.write(
          `${table([['kind', 'n', 'exact match'].map((h) => color.bold(h)), ...scores.map((s) => [s.kind, String(s.n), `${(100 * s.exactMatch).toFixed(1)}%`])])}\n`,
        );
        if (flags.out) process.stdout.write(color.dim(`predictions: ${flags.out}\n`));
      } finally {
        bar?.stop();
        loaded.model.dispose();
      }
    });
}
