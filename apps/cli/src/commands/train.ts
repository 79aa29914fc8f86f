import { dirname, resolve } from 'node:path';
import {
  initBackend,
  LlavaForConditionalGeneration,
  loadRecipe,
  type StepMetrics,
  Trainer,
} from '@vistune/core';
import type { Command } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { backendOption } from '../program.js';
import { modelForRecipe, modelSaver, stageData } from '../training.js';
import { CliError, color, type Progress, printJson, progress } from '../ui.js';

interface TrainFlags {
  config: string;
  resume?: string;
  maxSteps?: string;
  json?: boolean;
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('Run a training recipe (YAML/JSON): stages in order, checkpoints, metrics log, loss curve')
    .requiredOption('--config <recipe>', 'recipe file (model, data, stages, optimizer, checkpoint, output)')
    .option('--resume <checkpoint>', "resume from a checkpoint folder or 'latest'")
    .option('--max-steps <n>', 'stop (with a checkpoint) after this many optimizer steps')
    .option('--json', 'print one JSON summary at the end instead of progress')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune train --config recipes/llava-stage1.yaml\n  $ vistune train --config recipe.yaml --resume latest',
    )
    .action(async (flags: TrainFlags, cmd: Command) => {
      await initBackend({ backend: backendOption(cmd), quiet: true });
      const recipePath = resolve(flags.config);
      const recipe = await loadRecipe(recipePath);
      const registry = await builtinRegistry();
      const loaded = await modelForRecipe(recipe, registry, dirname(recipePath));
      const data = stageData(recipe, loaded, dirname(recipePath));
      const model = loaded.model;
      if (!(model instanceof LlavaForConditionalGeneration)) {
        model.dispose();
        throw new CliError(
          `${recipePath}: model: vistune train tunes multimodal (LLaVA) models; ${loaded.dir} is a text-only LM`,
        );
      }
      let bar: Progress | undefined;
      const log = (line: string) => {
        if (!flags.json) process.stderr.write(`${line}\n`);
      };
      const trainer = new Trainer({
        model,
        recipe,
        data,
        saveModel: modelSaver(loaded),
        onEvent: (e) => {
          if (e.type === 'stage-start') {
            bar?.stop();
            log(
              `${color.bold(`stage ${e.index + 1}: ${e.stage}`)} — ${e.steps} steps, ${(e.trainableParameters / 1e6).toFixed(2)}M trainable parameters${e.resumed ? ' (resumed)' : ''}`,
            );
            bar = flags.json ? undefined : progress(e.stage, e.steps, ['loss', 'lr', 'gnorm', 'tok_s']);
          } else if (e.type === 'checkpoint') {
            log(color.dim(`checkpoint ${e.dir}`));
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
          maxSteps: flags.maxSteps === undefined ? undefined : Number(flags.maxSteps),
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
        };
        if (flags.json) printJson(summary);
        else {
          log(
            `${color.green(result.status)} at step ${result.step}, last loss ${last?.loss.toFixed(4) ?? '-'}`,
          );
          if (result.modelDir)
            log(
              `model: ${result.modelDir}  (try: vistune generate --model ${result.modelDir} --image IMG --prompt "…")`,
            );
          if (result.checkpoint) log(`checkpoint: ${result.checkpoint}  (resume with --resume latest)`);
        }
      } finally {
        process.off('SIGINT', onSigint);
        loaded.model.dispose();
      }
    });
}
