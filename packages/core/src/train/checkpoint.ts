// Training checkpoints: `checkpoint-<step>/` folders written into a temp folder and renamed into place, so a
// crash mid-write never leaves a half checkpoint under a real name; older ones are pruned only afterwards.
//
// Contents (see the trainer for who fills what):
//   trainable_weights.safetensors  every parameter trained so far, by model name (untrained ones are
//                                  rebuilt from the recipe's model, checked by a fingerprint)
//   optimizer.safetensors          the current stage's optimizer buffers + step
//   trainer_state.json             stage, step, epoch, data position, rng, metrics (written last)
//   config.json, model*.safetensors the loadable model folder (final checkpoint only)
import { randomUUID } from 'node:crypto';
import { access, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { BatchSourceState } from '../data/types.js';
import { readJsonFile } from '../io/json.js';
import { loadSafetensors } from '../io/safetensors-read.js';
import { saveSafetensors } from '../io/safetensors-write.js';
import { faultPoint } from './fault.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const TRAINABLE_WEIGHTS_FILE = 'trainable_weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;
const TEMP_PREFIX = '.tmp-checkpoint-';

/** One optimizer step as reported to onStep and logged to metrics.jsonl. */
export interface StepRecord {
  /** Global optimizer step, from 1. */
  step: number;
  stage: string;
  stageIndex: number;
  /** Step within the stage, from 1. */
  stageStep: number;
  /** Epochs of the stage's data consumed (fractional). */
  epoch: number;
  /** Mean loss of the step's micro-batches, weighted by supervised tokens. */
  loss: number;
  /** Lr of the stage's base group at this step. */
  lr: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** Tokens (attention-mask ones) in the step. */
  tokens: number;
  /** ISO time the step ended. */
  time?: string;
  /** Seconds of training when the step ended, counted across resumes (time between a stop and its resume excluded). */
  elapsed?: number;
  /** Mean LM loss on the held-out data (validation.batches of data.val), when this step was validated. */
  val_loss?: number;
  /** The same with the media shuffled across samples: clearly above val_loss when the model uses the media. */
  val_loss_shuffled?: number;
}

const stepRecordSchema = z.object({
  step: z.number().int(),
  stage: z.string(),
  stageIndex: z.number().int(),
  stageStep: z.number().int(),
  epoch: z.number(),
  loss: z.number(),
  lr: z.number(),
  gradNorm: z.number(),
  tokens: z.number(),
  time: z.string().optional(),
  elapsed: z.number().optional(),
  val_loss: z.number().optional(),
  val_loss_shuffled: z.number().optional(),
});

/** The best validated checkpoint of the current stage (lowest val loss). */
const bestCheckpointSchema = z.object({
  step: z.number().int(),
  stage: z.string(),
  valLoss: z.number(),
  /** The checkpoint folder's name under the checkpoint root (checkpoint-<step>). */
  checkpoint: z.string(),
});
export type BestCheckpoint = z.infer<typeof bestCheckpointSchema>;

/** Early-stopping and best-checkpoint state, reset at each stage (val losses of two stages' templates differ). */
const validationStateSchema = z.object({
  stage: z.number().int().min(0),
  best: bestCheckpointSchema.nullable(),
  /** Validations in a row since the best one. */
  sinceBest: z.number().int().min(0),
});
export type ValidationState = z.infer<typeof validationStateSchema>;

/** A time-budgeted run's plan of the current stage (see budget.ts). */
const budgetStateSchema = z.object({
  /** The whole budget in seconds. */
  seconds: z.number().positive(),
  /** Stage this plan belongs to. */
  stage: z.number().int().min(0),
  /** Planned optimizer steps of the stage (null before its first step ended). */
  plan: z.number().int().min(0).nullable(),
  /** The plan after calibration, for the shortfall report. */
  calibratedPlan: z.number().int().min(0).nullable(),
  /** Lr-schedule mapping: at stage step `anchorStep` the schedule was at fraction `anchorProgress`. */
  anchorStep: z.number().int().min(0),
  anchorProgress: z.number().min(0).max(1),
  /** Times the plan was changed after calibration. */
  replans: z.number().int().min(0),
});
export type BudgetState = z.infer<typeof budgetStateSchema>;

export const trainerStateSchema = z.object({
  format: z.literal('vistune-trainer-state-1'),
  /** Stage names of the recipe, in order (a resume checks them). */
  stages: z.array(z.string()),
  /** Planned optimizer steps of each stage. */
  stageSteps: z.array(z.number().int()),
  /** Index of the stage in progress; stages.length when training is complete. */
  stage: z.number().int().min(0),
  /** Optimizer steps done in that stage. */
  stageStep: z.number().int().min(0),
  /** Optimizer steps done in all stages. */
  step: z.number().int().min(0),
  /** Micro-batches of the stage's data consumed; epoch = microBatches / batches per epoch. */
  microBatches: z.number().int().min(0),
  epoch: z.number().min(0),
  /** The stage's data source position (BatchSource.state()), null between stages. */
  data: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])).nullable(),
  rng: z.object({ seed: z.number().int(), loraDropoutCalls: z.number().int().min(0) }),
  /** Names of every parameter trained so far (what trainable_weights.safetensors holds). */
  trainedParameters: z.array(z.string()),
  /** Σ over untrained parameters of Σp + Σp², from the model the run started with. */
  untrainedFingerprint: z.number(),
  metrics: z.array(stepRecordSchema),
  /** Seconds of training so far (older checkpoints lack it: 0). */
  elapsedSeconds: z.number().min(0).optional(),
  validation: validationStateSchema.optional(),
  budget: budgetStateSchema.optional(),
});
export type TrainerState = z.infer<typeof trainerStateSchema> & { data: BatchSourceState | null };

export interface CheckpointContents {
  state: TrainerState;
  /** → trainable_weights.safetensors */
  weights?: Map<string, tf.Tensor>;
  /** → optimizer.safetensors */
  optimizer?: Map<string, tf.Tensor>;
  /** Writes a loadable model folder into the given (temp) folder. */
  writeModel?: (dir: string) => Promise<void>;
}

export interface SaveCheckpointOptions {
  /** Keep this many newest checkpoints (by step), deleting older ones after this one is complete; null keeps all. */
  keep?: number | null;
  /** Checkpoint folders never pruned, on top of the `keep` newest (the best validated one). */
  pinned?: readonly string[];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function writeJsonDurably(path: string, value: unknown): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Writes `<root>/checkpoint-<step>` atomically (temp folder + rename) and prunes to `keep`; returns its path. */
export async function saveCheckpoint(
  root: string,
  contents: CheckpointContents,
  opts: SaveCheckpointOptions = {},
): Promise<string> {
  const step = contents.state.step;
  const finalDir = join(root, `checkpoint-${step}`);
  const temp = join(root, `${TEMP_PREFIX}${step}-${randomUUID()}`);
  await mkdir(temp, { recursive: true });
  try {
    if (contents.writeModel) await contents.writeModel(temp);
    faultPoint('checkpoint:model-written', step);
    if (contents.weights) await saveSafetensors(join(temp, TRAINABLE_WEIGHTS_FILE), contents.weights);
    if (contents.optimizer) await saveSafetensors(join(temp, OPTIMIZER_FILE), contents.optimizer);
    faultPoint('checkpoint:weights-written', step);
    // Written last: a folder with trainer_state.json is complete.
    await writeJsonDurably(join(temp, TRAINER_STATE_FILE), contents.state);
    faultPoint('checkpoint:state-written', step);
    if (await exists(finalDir)) {
      // Same step written again (a resumed run passing an old checkpoint): swap, keeping a complete copy throughout.
      const old = join(root, `${TEMP_PREFIX}${step}-replaced-${randomUUID()}`);
      await rename(finalDir, old);
      await rename(temp, finalDir);
      await rm(old, { recursive: true, force: true });
    } else await rename(temp, finalDir);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  faultPoint('checkpoint:renamed', step);
  if (opts.keep != null) await pruneCheckpoints(root, opts.keep, { protect: finalDir, pinned: opts.pinned });
  return finalDir;
}

/** Complete checkpoints under root (those with trainer_state.json), oldest step first. */
export async function listCheckpoints(root: string): Promise<{ step: number; dir: string }[]> {
  const entries = await readdir(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const found: { step: number; dir: string }[] = [];
  for (const name of entries) {
    const m = CHECKPOINT_DIR.exec(name);
    if (m && (await exists(join(root, name, TRAINER_STATE_FILE))))
      found.push({ step: Number(m[1]), dir: join(root, name) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/**
 * Deletes all but the `keep` newest complete checkpoints (by step number, not folder name); `protect` (the one
 * just written) always counts among the kept, even when a higher-numbered folder exists beside it; `pinned`
 * folders are kept on top of those and do not count.
 */
export async function pruneCheckpoints(
  root: string,
  keep: number,
  opts: { protect?: string; pinned?: readonly string[] } = {},
): Promise<string[]> {
  if (!(Number.isInteger(keep) && keep > 0))
    throw new Error(`pruneCheckpoints: keep must be a positive integer, got ${keep}`);
  const pinned = new Set(opts.pinned ?? []);
  const all = (await listCheckpoints(root)).filter((c) => !pinned.has(c.dir) || c.dir === opts.protect);
  const others = all.filter((c) => c.dir !== opts.protect);
  const slots = opts.protect !== undefined && others.length < all.length ? keep - 1 : keep;
  const doomed = others.slice(0, Math.max(0, others.length - slots)).map((c) => c.dir);
  for (const dir of doomed) await rm(dir, { recursive: true, force: true });
  return doomed;
}

/** Removes temp folders a killed process left behind. */
export async function removeStaleTempCheckpoints(root: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const name of entries)
    if (name.startsWith(TEMP_PREFIX)) await rm(join(root, name), { recursive: true, force: true });
}

/** 'latest' → the newest complete checkpoint under root; otherwise a checkpoint folder path. */
export async function resolveCheckpoint(root: string, spec: string): Promise<string> {
  if (spec === 'latest') {
    const all = await listCheckpoints(root);
    if (all.length === 0)
      throw new Error(
        `resume 'latest': no complete checkpoint-<step> folder in ${root} (start without resume)`,
      );
    return all[all.length - 1].dir;
  }
  if (!(await exists(join(spec, TRAINER_STATE_FILE)))) {
    throw new Error(
      `resume: ${spec} is not a complete checkpoint (no ${TRAINER_STATE_FILE}); pass a checkpoint-<step> folder or 'latest'`,
    );
  }
  return spec;
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  /** null when the checkpoint has none (final checkpoints). The caller disposes the tensors. */
  weights: Map<string, tf.Tensor> | null;
  optimizer: Map<string, tf.Tensor> | null;
}

/** Reads a checkpoint folder written by saveCheckpoint. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const state = (await readJsonFile(join(dir, TRAINER_STATE_FILE), 'trainer state', {
    hint: 'expected a checkpoint-<step> folder',
    schema: trainerStateSchema,
  })) as TrainerState;
  const weightsPath = join(dir, TRAINABLE_WEIGHTS_FILE);
  const optimizerPath = join(dir, OPTIMIZER_FILE);
  const weights = (await exists(weightsPath)) ? await loadSafetensors(weightsPath) : null;
  try {
    const optimizer = (await exists(optimizerPath)) ? await loadSafetensors(optimizerPath) : null;
    return { dir, state, weights, optimizer };
  } catch (err) {
    for (const t of weights?.values() ?? []) t.dispose();
    throw err;
  }
}
