// `vistune params --config recipe.yaml`: the model's parameter names, shapes and counts and, per stage, what
// trains (after the stage's train/freeze globs and LoRA targets), without training: for writing those globs.
import { dirname, resolve } from 'node:path';
import {
  describeStageParameters,
  initBackend,
  loadRecipe,
  type Recipe,
  type StageParameterView,
} from '@vistune/core';
import type { Command } from 'commander';
import { createVistuneRegistry } from '../api/registry.js';
import { addPluginOption, backendOption } from '../options.js';
import { modelForRecipe } from '../training.js';
import { CliError, color, printJson, table } from '../ui.js';

interface ParamsFlags {
  config: string;
  trainable?: boolean;
  plugin?: string[];
  json?: boolean;
}

/** 1234567 → 1.23M. */
function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Builds the recipe's model as `vistune train` would and describes its stages. */
export async function stageParameters(
  configPath: string,
  opts: { plugins?: readonly string[]; onNote?: (line: string) => void } = {},
): Promise<{ recipe: Recipe; stages: StageParameterView[] }> {
  const recipePath = resolve(configPath);
  const recipe = await loadRecipe(recipePath).catch((err: Error) => {
    throw new CliError(err.message);
  });
  const registry = await createVistuneRegistry({
    plugins: [...recipe.plugins, ...(opts.plugins ?? [])],
    from: dirname(recipePath),
  });
  const vlm = await modelForRecipe(recipe, registry, dirname(recipePath), { onNote: opts.onNote });
  try {
    return { recipe, stages: describeStageParameters(vlm.model, recipe) };
  } finally {
    vlm.dispose();
  }
}

/** One row per parameter name (LoRA's only in their stage), one column per stage. */
function parameterTable(
  recipe: Recipe,
  stages: readonly StageParameterView[],
  onlyTrainable: boolean,
): string {
  const rows = new Map<string, { shape: number[]; count: number; cells: string[] }>();
  stages.forEach((view, si) => {
    const stageLr = recipe.stages[si].lr;
    for (const p of view.parameters) {
      const row = rows.get(p.name) ?? { shape: p.shape, count: p.count, cells: stages.map(() => '—') };
      row.cells[si] = !p.trainable
        ? color.dim('·')
        : p.lr !== undefined && p.lr !== stageLr
          ? color.green(`train lr ${p.lr}`)
          : color.green('train');
      rows.set(p.name, row);
    }
  });
  const header = ['name', 'shape', 'params', ...stages.map((s) => s.stage)].map((h) => color.bold(h));
  const body = [...rows]
    .filter(([, row]) => !onlyTrainable || row.cells.some((c) => c.includes('train')))
    .map(([name, row]) => [name, row.shape.join('×'), compact(row.count), ...row.cells]);
  return table([header, ...body]);
}

export function registerParamsCommand(program: Command): void {
  const cmd = program
    .command('params')
    .description(
      "List the recipe model's parameter names, shapes and counts, and what each stage trains (train/freeze globs, LoRA), without training",
    )
    .requiredOption('--config <recipe>', 'recipe file (YAML/JSON)')
    .option('--trainable', 'only the parameters some stage trains');
  addPluginOption(cmd)
    .option('--json', 'print { stages: [{ stage, trainableCount, totalCount, parameters: [...] }] }')
    .addHelpText(
      'after',
      '\nGlobs in train / freeze / paramGroups match these dotted names; * spans dots:\n  modalities.image.encoder.*   modalities.image.adapter.*   llm.*   llm.model.embed_tokens.weight\n\nExamples:\n  $ vistune params --config recipe.yaml\n  $ vistune params --config recipe.yaml --trainable --json',
    )
    .action(async (flags: ParamsFlags, command: Command) => {
      await initBackend({ backend: backendOption(command), quiet: true });
      const { recipe, stages } = await stageParameters(flags.config, {
        plugins: flags.plugin,
        onNote: (line) => process.stderr.write(`${color.dim('note')} ${line}\n`),
      });
      const errors = stages.filter((s) => s.error !== undefined);
      if (flags.json) printJson({ stages });
      else {
        const total = stages[0]?.parameters.filter((p) => !/\.lora_[AB]\.weight$/.test(p.name));
        process.stdout.write(
          `${parameterTable(recipe, stages, flags.trainable ?? false)}\n\n${color.bold('model')} ${compact(
            (total ?? []).reduce((n, p) => n + p.count, 0),
          )} parameters in ${total?.length ?? 0} tensors\n`,
        );
        for (const [si, view] of stages.entries()) {
          const stage = recipe.stages[si];
          const globs = [
            stage.train.length ? `train ${stage.train.join(' ')}` : '',
            stage.freeze.length ? `freeze ${stage.freeze.join(' ')}` : '',
            stage.lora ? `lora r=${stage.lora.r} on ${stage.lora.targets.join(' ')}` : '',
          ].filter(Boolean);
          process.stdout.write(
            `${color.bold(`stage ${view.stage}`)} ${compact(view.trainableCount)} of ${compact(view.totalCount)} parameters train (${globs.join('; ')})\n`,
          );
        }
      }
      if (errors.length) throw new CliError(errors.map((s) => `stage ${s.stage}: ${s.error}`).join('\n'));
    });
}
