import { dirname, resolve } from 'node:path';
import {
  type DataStats,
  dataStatsJson,
  formatDataStats,
  initBackend,
  loadRecipe,
  parseDuration,
  type StepMetrics,
  Trainer,
  type TrainerEvent,
  type TrainResult,
} from '@vistune/core';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createVistuneRegistry } from '../api/registry.js';
import {
  addAllowNonfiniteOption,
  addPluginOption,
  backendOption,
  parseFraction,
  parsePositiveInt,
} from '../options.js';
import { cliReplica } from '../replica.js';
import { modelForRecipe, recipeTask, slotsPerModality, stageData } from '../training.js';
import { CliError, color, type Progress, printJson, progress } from '../ui.js';

interface TrainFlags {
  config: string;
  resume?: string;
  maxSteps?: number;
  timeBudget?: number;
  overwrite?: boolean;
  strict?: boolean;
  maxSkipFraction?: number;
  workers?: number;
  plugin?: string[];
  allowNonfinite?: boolean;
  json?: boolean;
}

/** `--time-budget 15m` → seconds. */
function parseTimeBudget(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

const fixed = (v: number) => v.toFixed(4);

/** One line for a trainer event worth printing beside the progress bar (null: nothing to print). */
function eventLine(e: TrainerEvent): string | null {
  switch (e.type) {
    case 'validation': {
      const control = e.shuffledLoss === null ? '' : `, media shuffled ${fixed(e.shuffledLoss)}`;
      const mark = e.best ? color.green(' best') : color.dim(` (${e.sinceBest} since best)`);
      return `step ${e.step} val loss ${fixed(e.loss)}${control}${mark} ${color.dim(`${e.seconds.toFixed(1)}s`)}`;
    }
    case 'early-stop':
      return color.yellow(
        `early stopping: stage ${e.stage} at step ${e.step}, ${e.patience} validations without improvement` +
          (e.best ? ` (best val loss ${fixed(e.best.valLoss)} at step ${e.best.step})` : ''),
      );
    case 'budget-plan':
      return color.dim(
        e.why === 'calibrated'
          ? `time budget: stage ${e.stage} planned at ${e.plan} steps after calibration`
          : e.why === 'replanned'
            ? `time budget: stage ${e.stage} re-planned to ${e.plan} steps at step ${e.step} (step time changed)`
            : `time budget: stage ${e.stage} cut at step ${e.step} by its deadline (planned ${e.plan})`,
      );
    case 'checkpoint':
      return color.dim(`checkpoint ${e.dir}${e.best ? ' (best so far, kept)' : ''}`);
    default:
      return null;
  }
}

/** The end of a run in words: why it ended, the model it left, the best checkpoint, how the budget went. */
function resultLines(result: TrainResult): string[] {
  const last = result.metrics.at(-1);
  const why: Record<TrainResult['reason'], string> = {
    finished: 'the recipe plan is done',
    'early-stopping': 'early stopping (validation.patience)',
    'time-budget': 'the time budget',
    maxSteps: '--max-steps',
    abort: 'interrupted',
  };
  const lines = [
    `${color.green(result.status)} at step ${result.step} (${why[result.reason]}), last loss ${last?.loss.toFixed(4) ?? '-'}`,
  ];
  if (result.best)
    lines.push(
      `best val loss ${fixed(result.best.valLoss)} at step ${result.best.step} (${result.best.checkpoint})`,
    );
  const b = result.budget;
  if (b) {
    lines.push(
      `time budget ${b.seconds.toFixed(0)}s: used ${b.usedSeconds.toFixed(1)}s, ${b.steps} steps (up to ${b.plannedSteps} planned, ${b.replans} re-plans)`,
    );
    if (b.shortfall) lines.push(color.yellow(`shortfall: ${b.shortfall}`));
  }
  if (result.modelDir) {
    const what =
      result.status === 'stopped'
        ? `the weights at step ${result.modelStep}, mid-schedule; --resume latest continues`
        : `the weights at step ${result.modelStep}`;
    lines.push(
      `model: ${result.modelDir}  (${what}; try: vistune generate --model ${result.modelDir} --prompt "…")`,
    );
  }
  if (result.checkpoint) lines.push(`checkpoint: ${result.checkpoint}  (resume with --resume latest)`);
  return lines;
}

export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('Run a training recipe (YAML/JSON): stages in order, checkpoints, metrics log, loss curve')
    .requiredOption('--config <recipe>', 'recipe file (model, data, stages, optimizer, checkpoint, output)')
    .option('--resume <checkpoint>', "resume from a checkpoint folder or 'latest'")
    .addOption(
      new Option(
        '--max-steps <n>',
        'stop after this many optimizer steps with a checkpoint and a model folder of the weights at that step (resume continues the schedule)',
      ).argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--time-budget <duration>',
        'train for this long (30s, 15m, 1h, 1h30m): steps and lr schedule are planned from the measured step time; ends with a saved model (recipe budget)',
      ).argParser(parseTimeBudget),
    )
    .option('--overwrite', 'train into an output folder that holds another run (its files are moved aside)')
    .option('--strict', 'fail on the first skipped data record instead of skipping it')
    .addOption(
      new Option(
        '--max-skip-fraction <f>',
        'fail when more than this fraction of the records is skipped (recipe data.maxSkipFraction)',
      ).argParser(parseFraction),
    )
    .addOption(
      new Option(
        '--workers <n>',
        "model replicas training each step's micro-batches side by side, one per core (recipe parallel.workers; wasm/cpu backend)",
      ).argParser(parsePositiveInt),
    );
  addAllowNonfiniteOption(cmd);
  addPluginOption(cmd)
    .option('--json', 'print one JSON summary at the end instead of progress')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune train --config recipes/llava-stage1.yaml\n  $ vistune train --config recipe.yaml --workers 2\n  $ vistune train --config recipe.yaml --time-budget 15m\n  $ vistune train --config recipe.yaml --resume latest\n  $ vistune train --config recipe.yaml --plugin vistune-plugin-points',
    )
    .action(async (flags: TrainFlags, command: Command) => {
      await initBackend({ backend: backendOption(command), quiet: true });
      const recipePath = resolve(flags.config);
      const loaded = await loadRecipe(recipePath).catch((err: Error) => {
        throw new CliError(err.message);
      });
      const recipe = flags.workers ? { ...loaded, parallel: { workers: flags.workers } } : loaded;
      const registry = await createVistuneRegistry({
        plugins: [...recipe.plugins, ...(flags.plugin ?? [])],
        from: dirname(recipePath),
      });
      const vlm = await modelForRecipe(recipe, registry, dirname(recipePath), {
        allowNonfinite: flags.allowNonfinite,
        onNote: (line) => flags.json || process.stderr.write(`${color.dim('note')} ${line}\n`),
      });
      const log = (line: string) => {
        if (!flags.json) process.stderr.write(`${line}\n`);
      };
      const dataStats: Record<string, DataStats> = {};
      try {
        const task = recipeTask(recipe, registry);
        const targets = task?.targets?.({
          model: vlm.model,
          tokenizer: vlm.tokenizer,
          registry,
          config: recipe.task ?? { type: task.name },
        });
        const slots = await slotsPerModality(vlm, recipe, dirname(recipePath));
        const dataOptions = { strict: flags.strict, maxSkipFraction: flags.maxSkipFraction, targets };
        const data = stageData(recipe, vlm, dirname(recipePath), slots, {
          ...dataOptions,
          onLoaded: (loader, stage) => {
            dataStats[stage.name] = loader.stats;
            log(`${color.bold(`data (stage ${stage.name})`)}\n${formatDataStats(loader.stats)}`);
          },
        });
        const budget = flags.timeBudget ?? recipe.budget?.time;
        const validationData = recipe.validation
          ? stageData(recipe, vlm, dirname(recipePath), slots, { ...dataOptions, validation: true })
          : undefined;
        let bar: Progress | undefined;
        let barStage = '';
        let barTotal = 0;
        const startBar = (stage: string, total: number) => {
          bar?.stop();
          barStage = stage;
          barTotal = total;
          bar = flags.json ? undefined : progress(stage, total, ['loss', 'lr', 'gnorm', 'tok_s']);
        };
        const trainer = new Trainer({
          model: vlm.model,
          recipe,
          data,
          validationData,
          saveModel: async (_model, dir) => vlm.save(dir),
          replica: cliReplica('recipeReplicaModel', {
            recipePath,
            plugins: flags.plugin ?? [],
            allowNonfinite: flags.allowNonfinite,
          }),
          onEvent: (e) => {
            if (e.type === 'stage-start') {
              bar?.stop();
              log(
                `${color.bold(`stage ${e.index + 1}: ${e.stage}`)} — ${e.steps} steps${budget ? ' (first estimate: the time budget plans them)' : ''}, ${(e.trainableParameters / 1e6).toFixed(2)}M trainable parameters${e.resumed ? ' (resumed)' : ''}`,
              );
              startBar(e.stage, e.steps);
            } else if (e.type === 'warning') {
              bar?.stop();
              process.stderr.write(`${color.yellow('warning')} ${e.message}\n`);
            } else if (e.type === 'done') {
              bar?.stop();
              bar = undefined;
            } else {
              const line = eventLine(e);
              if (!line) return;
              const running = bar !== undefined;
              bar?.stop();
              log(line);
              // The bar restarts under the printed line, with a re-planned stage's new total.
              if (e.type === 'budget-plan') barTotal = e.plan;
              if (running) startBar(barStage, barTotal);
            }
          },
          onStep: (m: StepMetrics) => {
            bar?.update(m.stageStep, {
              loss: m.loss.toFixed(4),
              lr: m.lr.toExponential(2),
              gnorm: m.gradNorm.toFixed(2),
              tok_s: m.tokensPerSec.toFixed(0),
            });
            if (!process.stderr.isTTY && !flags.json && m.step % 10 === 0) {
              log(
                `step ${m.step}/${m.totalSteps} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ${m.tokensPerSec.toFixed(0)} tok/s eta ${m.eta.toFixed(0)}s`,
              );
            }
          },
        });
        const workers = recipe.parallel.workers;
        if (workers > 1)
          log(
            color.dim(
              `data parallel: ${workers} model replicas (this thread + ${workers - 1} worker threads)`,
            ),
          );
        const controller = new AbortController();
        const onSigint = () => controller.abort();
        process.once('SIGINT', onSigint);
        try {
          const result = await trainer.run({
            resumeFrom: flags.resume,
            signal: controller.signal,
            maxSteps: flags.maxSteps,
            timeBudget: flags.timeBudget,
            overwrite: flags.overwrite,
          });
          bar?.stop();
          const last = result.metrics.at(-1);
          const summary = {
            status: result.status,
            reason: result.reason,
            step: result.step,
            finalLoss: last?.loss ?? null,
            finalValLoss: result.metrics.findLast((m) => m.val_loss !== undefined)?.val_loss ?? null,
            checkpoint: result.checkpoint,
            modelDir: result.modelDir,
            modelStep: result.modelStep,
            best: result.best,
            budget: result.budget,
            output: recipe.output,
            data: Object.fromEntries(Object.entries(dataStats).map(([k, v]) => [k, dataStatsJson(v)])),
          };
          if (flags.json) printJson(summary);
          else for (const line of resultLines(result)) log(line);
        } finally {
          process.off('SIGINT', onSigint);
        }
      } finally {
        vlm.dispose();
      }
    });
}
