import { dirname, resolve } from 'node:path';
import {
  type DataStats,
  dataStatsJson,
  formatDataStats,
  initBackend,
  loadRecipe,
  type StepMetrics,
  Trainer,
} from '@vistune/core';
import { type Command, Option } from 'commander';
import { createVistuneRegistry } from '../api/registry.js';
import {
  addAllowNonfiniteOption,
  addPluginOption,
  backendOption,
  parseFraction,
  parsePositiveInt,
} from '../options.js';
import { modelForRecipe, recipeTask, slotsPerModality, stageData } from '../training.js';
import { CliError, color, type Progress, printJson, progress } from '../ui.js';

interface TrainFlags {
  config: string;
  resume?: string;
  maxSteps?: number;
  overwrite?: boolean;
  strict?: boolean;
  maxSkipFraction?: number;
  plugin?: string[];
  allowNonfinite?: boolean;
  json?: boolean;
}

export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('Run a training recipe (YAML/JSON): stages in order, checkpoints, metrics log, loss curve')
    .requiredOption('--config <recipe>', 'recipe file (model, data, stages, optimizer, checkpoint, output)')
    .option('--resume <checkpoint>', "resume from a checkpoint folder or 'latest'")
    .addOption(
      new Option('--max-steps <n>', 'stop (with a checkpoint) after this many optimizer steps').argParser(
        parsePositiveInt,
      ),
    )
    .option('--overwrite', 'train into an output folder that holds another run (its files are moved aside)')
    .option('--strict', 'fail on the first skipped data record instead of skipping it')
    .addOption(
      new Option(
        '--max-skip-fraction <f>',
        'fail when more than this fraction of the records is skipped (recipe data.maxSkipFraction)',
      ).argParser(parseFraction),
    );
  addAllowNonfiniteOption(cmd);
  addPluginOption(cmd)
    .option('--json', 'print one JSON summary at the end instead of progress')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune train --config recipes/llava-stage1.yaml\n  $ vistune train --config recipe.yaml --resume latest\n  $ vistune train --config recipe.yaml --plugin vistune-plugin-points',
    )
    .action(async (flags: TrainFlags, command: Command) => {
      await initBackend({ backend: backendOption(command), quiet: true });
      const recipePath = resolve(flags.config);
      const recipe = await loadRecipe(recipePath).catch((err: Error) => {
        throw new CliError(err.message);
      });
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
        const data = stageData(recipe, vlm, dirname(recipePath), slots, {
          strict: flags.strict,
          maxSkipFraction: flags.maxSkipFraction,
          targets,
          onLoaded: (loader, stage) => {
            dataStats[stage.name] = loader.stats;
            log(`${color.bold(`data (stage ${stage.name})`)}\n${formatDataStats(loader.stats)}`);
          },
        });
        let bar: Progress | undefined;
        const trainer = new Trainer({
          model: vlm.model,
          recipe,
          data,
          saveModel: async (_model, dir) => vlm.save(dir),
          onEvent: (e) => {
            if (e.type === 'stage-start') {
              bar?.stop();
              log(
                `${color.bold(`stage ${e.index + 1}: ${e.stage}`)} — ${e.steps} steps, ${(e.trainableParameters / 1e6).toFixed(2)}M trainable parameters${e.resumed ? ' (resumed)' : ''}`,
              );
              bar = flags.json ? undefined : progress(e.stage, e.steps, ['loss', 'lr', 'gnorm', 'tok_s']);
            } else if (e.type === 'checkpoint') {
              log(color.dim(`checkpoint ${e.dir}`));
            } else if (e.type === 'warning') {
              bar?.stop();
              process.stderr.write(`${color.yellow('warning')} ${e.message}\n`);
            } else if (e.type === 'done') {
              bar?.stop();
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
        const controller = new AbortController();
        const onSigint = () => controller.abort();
        process.once('SIGINT', onSigint);
        try {
          const result = await trainer.run({
            resumeFrom: flags.resume,
            signal: controller.signal,
            maxSteps: flags.maxSteps,
            overwrite: flags.overwrite,
          });
          bar?.stop();
          const last = result.metrics.at(-1);
          const summary = {
            status: result.status,
            step: result.step,
            finalLoss: last?.loss ?? null,
            checkpoint: result.checkpoint,
            modelDir: result.modelDir,
            output: recipe.output,
            data: Object.fromEntries(Object.entries(dataStats).map(([k, v]) => [k, dataStatsJson(v)])),
          };
          if (flags.json) printJson(summary);
          else {
            log(
              `${color.green(result.status)} at step ${result.step}, last loss ${last?.loss.toFixed(4) ?? '-'}`,
            );
            if (result.modelDir)
              log(
                `model: ${result.modelDir}  (try: vistune generate --model ${result.modelDir} --prompt "…")`,
              );
            if (result.checkpoint) log(`checkpoint: ${result.checkpoint}  (resume with --resume latest)`);
          }
        } finally {
          process.off('SIGINT', onSigint);
        }
      } finally {
        vlm.dispose();
      }
    });
}
