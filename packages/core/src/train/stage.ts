// Per-stage setup: step count, trainable set by glob, optimizer with no-decay and lr groups, lr schedule.
import type * as tf from '@tensorflow/tfjs-core';
import type { BatchSource } from '../data/types.js';
import type { MultimodalBatch } from '../multimodal/model.js';
import { applyLora, mergeLora } from '../nn/lora.js';
import { type Module, nameMatcher } from '../nn/module.js';
import { AdamW } from '../optim/adamw.js';
import { NO_DECAY_PATTERNS, type Optimizer, type ParamGroupOptions } from '../optim/optimizer.js';
import { type LrSchedule, scheduleFromConfig } from '../optim/schedule.js';
import { SGD } from '../optim/sgd.js';
import type { Recipe, StageRecipe } from './recipe.js';

/** Samples per micro-batch in this stage (what the stage's data source should be built with). */
export function stageBatchSize(recipe: Recipe, stage: StageRecipe): number {
  return stage.batchSize ?? recipe.data.batchSize;
}

/** Micro-batches per optimizer step in this stage. */
export function stageAccumulate(recipe: Recipe, stage: StageRecipe): number {
  return stage.accumulate ?? recipe.optimizer.accumulate;
}

/**
 * Optimizer steps of a stage: `steps`, or ceil(epochs × batches per epoch / accumulate). Micro-batches flow
 * across epoch boundaries, so every step sees exactly `accumulate` of them.
 */
export function stageSteps(recipe: Recipe, stage: StageRecipe, source: BatchSource): number {
  if (stage.steps !== undefined) return stage.steps;
  if (!(source.length > 0)) {
    throw new Error(
      `stage "${stage.name}": its data source has no batches (length ${source.length}): check data.train`,
    );
  }
  return Math.ceil(((stage.epochs ?? 1) * source.length) / stageAccumulate(recipe, stage));
}

function listSome(names: readonly string[], n = 10): string {
  return names.length <= n ? names.join(', ') : `${names.slice(0, n).join(', ')}, … (${names.length} in all)`;
}

/** Names sharing the longest dotted prefix with the pattern's literal start: what the user probably meant. */
function nearestNames(pattern: string, names: readonly string[]): string[] {
  const literal = pattern.split(/[*?]/)[0];
  const segments = literal.split('.');
  for (let n = segments.length; n > 0; n--) {
    const prefix = segments.slice(0, n).join('.');
    const near = names.filter((name) => name.startsWith(prefix));
    if (near.length) return near;
  }
  return [...names];
}

/** Throws when a glob of `field` matches no parameter name (a typo would otherwise silently train nothing). */
function checkPatterns(patterns: readonly string[], names: readonly string[], field: string): void {
  patterns.forEach((p, j) => {
    const match = nameMatcher([p]);
    if (!names.some(match)) {
      throw new Error(
        `${field}[${j}]: "${p}" matches no parameter (globs on dotted names, * spans dots). ` +
          `Parameters: ${listSome(nearestNames(p, names))}`,
      );
    }
  });
}

/** trainOnly(stage.train), then freeze stage.freeze; `where` is the recipe field prefix for errors. */
export function setStageTrainable(model: Module, stage: StageRecipe, where: string): void {
  const names = model.namedParameters().map(([n]) => n);
  checkPatterns(stage.train, names, `${where}.train`);
  checkPatterns(stage.freeze, names, `${where}.freeze`);
  stage.paramGroups.forEach((g, i) => {
    checkPatterns(g.patterns, names, `${where}.paramGroups[${i}].patterns`);
  });
  model.trainOnly(stage.train);
  if (stage.freeze.length) model.setTrainable(stage.freeze, false);
}

export function stageSchedule(stage: StageRecipe, totalSteps: number): LrSchedule {
  return scheduleFromConfig({
    type: stage.schedule,
    totalSteps,
    warmupRatio: stage.warmupRatio,
    warmupSteps: stage.warmupSteps,
    minLrRatio: stage.minLrRatio,
  });
}

/**
 * Each parameter's lr and weight decay in a stage: from the first matching paramGroup (else the stage);
 * biases and norm weights never decay (HF Trainer's rule).
 */
export function stageParameterSettings(
  recipe: Recipe,
  stage: StageRecipe,
): (name: string) => { lr: number; weightDecay: number } {
  const decay = stage.weightDecay ?? recipe.optimizer.weightDecay;
  const noDecay = nameMatcher(NO_DECAY_PATTERNS);
  const groupOf = stage.paramGroups.map((g) => nameMatcher(g.patterns));
  return (name) => {
    const g = stage.paramGroups[groupOf.findIndex((m) => m(name))];
    return { lr: g?.lr ?? stage.lr, weightDecay: noDecay(name) ? 0 : (g?.weightDecay ?? decay) };
  };
}

/** The stage's optimizer over the trainable parameters, with stageParameterSettings' lr and decay. */
export function buildStageOptimizer(
  params: readonly [string, tf.Variable][],
  recipe: Recipe,
  stage: StageRecipe,
  schedule: LrSchedule,
): Optimizer {
  const decay = stage.weightDecay ?? recipe.optimizer.weightDecay;
  const settings = stageParameterSettings(recipe, stage);
  const groups = new Map<string, { lr: number; weightDecay: number; names: string[] }>();
  for (const [name] of params) {
    const { lr, weightDecay } = settings(name);
    const key = `${lr}/${weightDecay}`;
    const group = groups.get(key) ?? { lr, weightDecay, names: [] };
    group.names.push(name);
    groups.set(key, group);
  }
  // Exact names as patterns (parameter names hold no glob characters).
  const groupOptions: ParamGroupOptions[] = [...groups.values()].map((g) => ({
    patterns: g.names,
    lr: g.lr,
    weightDecay: g.weightDecay,
  }));
  const common = { lr: stage.lr, weightDecay: decay, schedule, groups: groupOptions };
  const o = recipe.optimizer;
  return o.type === 'adamw'
    ? new AdamW(params, { ...common, betas: o.betas, eps: o.eps })
    : new SGD(params, { ...common, momentum: o.momentum });
}

/** One parameter as a stage sees it. */
export interface StageParameter {
  name: string;
  shape: number[];
  count: number;
  trainable: boolean;
  /** lr and weight decay it trains with (trainable parameters only). */
  lr?: number;
  weightDecay?: number;
}

export interface StageParameterView {
  stage: string;
  /** Every parameter of the model during the stage, LoRA's lora_A / lora_B included. */
  parameters: StageParameter[];
  trainableCount: number;
  totalCount: number;
  /** The stage's globs or LoRA targets are wrong (the Trainer would refuse it); the flags are the previous stage's. */
  error?: string;
}

/**
 * What each stage of `recipe` trains, without training: stage by stage, as the Trainer sets it up, the
 * trainable flags after `train` / `freeze` and LoRA, with each trainable parameter's lr and decay. The model
 * is changed as training would change it (flags set, LoRA applied and merged at the stage's end with its
 * zero-initialised update), so use a model built for this.
 */
export function describeStageParameters(model: Module, recipe: Recipe): StageParameterView[] {
  return recipe.stages.map((stage, si) => {
    const where = `${recipe.source}: stages[${si}]`;
    let error: string | undefined;
    let lora = false;
    try {
      setStageTrainable(model, stage, where);
      if (stage.lora) {
        try {
          applyLora(model, { ...stage.lora, seed: recipe.seed + si });
          lora = true;
        } catch (err) {
          throw new Error(`${where}.lora.targets: ${(err as Error).message}`, { cause: err });
        }
      }
    } catch (err) {
      error = (err as Error).message;
    }
    const settings = stageParameterSettings(recipe, stage);
    const parameters = model.namedParameters().map(
      ([name, p]): StageParameter => ({
        name,
        shape: [...p.shape],
        count: p.size,
        trainable: p.trainable,
        ...(p.trainable ? settings(name) : {}),
      }),
    );
    if (lora) mergeLora(model);
    const sum = (list: StageParameter[]) => list.reduce((n, p) => n + p.count, 0);
    return {
      stage: stage.name,
      parameters,
      trainableCount: sum(parameters.filter((p) => p.trainable)),
      totalCount: sum(parameters),
      ...(error === undefined ? {} : { error }),
    };
  });
}

/** Real tokens of a batch: attention-mask ones, or every id without a mask. */
export function batchTokens(batch: MultimodalBatch): number {
  if (!batch.attentionMask) return batch.inputIds.size;
  let n = 0;
  for (const v of batch.attentionMask.dataSync()) n += v;
  return n;
}

/** Positions the LM loss averages over (labels[:, 1:] ≠ -100), or null without labels. */
export function supervisedTokens(batch: MultimodalBatch): number | null {
  if (!batch.labels) return null;
  const [B, T] = batch.labels.shape;
  const labels = batch.labels.dataSync();
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (labels[b * T + t] !== -100) n++;
  return n;
}
