import { writeFile } from 'node:fs/promises';
import {
  type AnswerMetric,
  type ConversationTemplate,
  dataStatsJson,
  emptyDataStats,
  formatDataStats,
  type MediaKind,
  type TaskFamily,
} from '@vistune/core';
import { type Command, Option } from 'commander';
import { loadModel } from '../api/model.js';
import { evaluate, scoreByKind } from '../evaluate.js';
import {
  addAllowNonfiniteOption,
  addLmHeadOption,
  addPluginOption,
  backendOption,
  commandRegistry,
  parsePositiveInt,
} from '../options.js';
import { CliError, color, printJson, progress, table } from '../ui.js';

interface EvalFlags {
  lmHead: 'float32' | 'int8';
  model: string;
  allowNonfinite?: boolean;
  data: string;
  images?: string;
  template?: string;
  systemPrompt?: string;
  metric?: string[];
  task?: string;
  codec?: string;
  freeRunning?: boolean;
  maxNewTokens: number;
  maxLength: number;
  limit?: number;
  out?: string;
  json?: boolean;
}

export function registerEvalCommand(program: Command, _kinds: readonly MediaKind[]): void {
  const cmd = program
    .command('eval')
    .description(
      'Answer every assistant turn of a LLaVA-format split (earlier turns teacher-forced from the references), save predictions, print scores per kind',
    )
    .requiredOption('--model <dir>', 'model folder (LLaVA-HF, a vistune composition, or a plugin family)')
    .requiredOption('--data <file>', 'LLaVA JSON or JSONL with reference answers')
    .option('--images <dir>', "folder the records' media paths are relative to (default: the data file's)")
    .option(
      '--template <name>',
      'registered conversation template of the prompts (vistune registry --kind template; default: the one the model was trained with, else hf)',
    )
    .option('--system-prompt <text>', "the template's system prompt (default: the model's; '' for none)")
    .option(
      '--metric <name...>',
      'registered answer metrics (vistune registry --kind metric); default exact_match',
    )
    .option('--task <name>', "score with a registered task family's metrics")
    .option('--codec <name>', 'also score boxes in answers (Acc@0.5, IoU) read with this registered codec')
    .option(
      '--free-running',
      "answer later turns after the model's own earlier answers (default: the references)",
    )
    .addOption(
      new Option('--max-new-tokens <n>', 'tokens per answer at most').argParser(parsePositiveInt).default(32),
    )
    .addOption(
      new Option('--max-length <n>', 'longest prompt (tokens, media expanded)')
        .argParser(parsePositiveInt)
        .default(2048),
    )
    .addOption(new Option('--limit <n>', 'evaluate only the first n records').argParser(parsePositiveInt))
    .option(
      '--out <file>',
      'write predictions as JSONL (id, turn, kind, question, prediction, reference, exactMatch, scores)',
    );
  addAllowNonfiniteOption(cmd);
  addLmHeadOption(cmd);
  addPluginOption(cmd)
    .option('--json', 'print the scores as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune eval --model runs/demo/model --data runs/demo/world/test.json\n  $ vistune eval --model DIR --data val.jsonl --metric exact_match token_f1 --limit 100 --out preds.jsonl --json',
    )
    .action(async (flags: EvalFlags, command: Command) => {
      const registry = await commandRegistry(command);
      const vlm = await loadModel(flags.model, {
        registry,
        backend: backendOption(command),
        allowNonfinite: Boolean(flags.allowNonfinite),
        lmHead: flags.lmHead,
      });
      try {
        const task = flags.task
          ? (registry.createSync('task', { type: flags.task }) as TaskFamily)
          : undefined;
        const metricConfigs = flags.metric?.map((type) => ({ type })) ??
          task?.metrics ?? [{ type: 'exact_match' }];
        const metrics: AnswerMetric[] = [];
        for (const config of metricConfigs) {
          const metric = (await registry.create('metric', config)) as Partial<AnswerMetric>;
          if (typeof metric.score !== 'function')
            throw new CliError(
              `metric '${config.type}' does not score answers (it is not an AnswerMetric with score()); see vistune registry --kind metric`,
              2,
            );
          metrics.push(metric as AnswerMetric);
        }
        const recorded = vlm.chat;
        const templateName = flags.template ?? recorded.template ?? 'hf';
        const systemPrompt =
          flags.systemPrompt ?? (flags.template === undefined ? recorded.systemPrompt : undefined);
        const template = registry.createSync('template', {
          type: templateName,
          ...(systemPrompt === undefined ? {} : { systemPrompt }),
        }) as ConversationTemplate;
        if (recorded.template && flags.template && flags.template !== recorded.template)
          process.stderr.write(
            color.yellow(
              `warning: --template ${flags.template} but the model was trained with ${recorded.template}; scores may suffer\n`,
            ),
          );
        if (!flags.json)
          process.stderr.write(
            color.dim(
              flags.freeRunning
                ? `template ${templateName}; later turns follow the model's own earlier answers (free-running)\n`
                : `template ${templateName}; earlier turns of multi-turn records are teacher-forced from the references (--free-running to use the model's own)\n`,
            ),
          );
        const bar = flags.json ? undefined : progress('eval', flags.limit ?? 0, ['em']);
        let correct = 0;
        let seen = 0;
        const stats = emptyDataStats();
        try {
          const predictions = await evaluate(vlm, {
            data: flags.data,
            imageFolder: flags.images,
            template,
            maxLength: flags.maxLength,
            limit: flags.limit,
            metrics,
            stats,
            freeRunning: flags.freeRunning,
            generate: { maxNewTokens: flags.maxNewTokens, doSample: false },
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
          if (flags.json)
            return printJson({
              template: templateName,
              scores,
              data: dataStatsJson(stats),
              predictions: flags.out ?? null,
            });
          process.stderr.write(`${formatDataStats(stats)}\n`);
          const names = metrics.map((m) => m.name);
          const header = ['kind', 'n', 'exact match', ...names.filter((n) => n !== 'exact_match')];
          const rows = scores.map((s) => [
            s.kind,
            String(s.n),
            `${(100 * s.exactMatch).toFixed(1)}%`,
            ...names
              .filter((n) => n !== 'exact_match')
              .map((n) =>
                s.metrics[n] ? `${(100 * s.metrics[n].mean).toFixed(1)}% (${s.metrics[n].n})` : '-',
              ),
          ]);
          process.stdout.write(`${table([header.map((h) => color.bold(h)), ...rows])}\n`);
          if (flags.out) process.stdout.write(color.dim(`predictions: ${flags.out}\n`));
        } finally {
          bar?.stop();
        }
      } finally {
        vlm.dispose();
      }
    });
}
