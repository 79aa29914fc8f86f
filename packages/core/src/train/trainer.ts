// Stage-wise trainer (LLaVA: align the projector, then instruction-tune): per stage it sets the trainable
// set, optional LoRA, an optimizer and lr schedule; each optimizer step accumulates gradients over
// micro-batches, clips by global norm and updates. Checkpoints resume exactly (weights, optimizer, schedule
// position, data position, LoRA dropout stream). Held-out loss (and its shuffled-media control) every N steps,
// the best checkpoint kept, early stopping, and a time budget that plans the steps. Run folder: metrics.jsonl,
// loss.html, adapters/, model/, held under an exclusive lock while training; a fresh run never writes over an
// earlier run's files.
import { access, appendFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { disposeMultimodalBatch } from '../data/loader.js';
import type { BatchSource } from '../data/types.js';
import { ensureDir, withFsContext } from '../io/fs-errors.js';
import { saveSafetensors } from '../io/safetensors-write.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { saveCausalLM } from '../llm/weights.js';
import type { MultimodalBatch } from '../multimodal/model.js';
import type { Linear } from '../nn/linear.js';
import {
  type AppliedLora,
  applyLora,
  type LoraBranch,
  loraLinears,
  mergeLora,
  saveLoraAdapter,
} from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import { GradientAccumulator } from '../optim/accumulate.js';
import { clipByGlobalNormAsync, disposeGradients, globalNormAsync } from '../optim/clip.js';
import { computeGradientsAsync } from '../optim/gradients.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LrSchedule } from '../optim/schedule.js';
import { type BudgetReport, TimeBudgetPlanner } from './budget.js';
import {
  type BestCheckpoint,
  type LoadedCheckpoint,
  loadCheckpoint,
  removeStaleTempCheckpoints,
  resolveCheckpoint,
  type StepRecord,
  saveCheckpoint,
  type TrainerState,
  type ValidationState,
} from './checkpoint.js';
import { faultPoint } from './fault.js';
import {
  checkDataParallel,
  dataParallelRecipe,
  ReplicaGroup,
  type ReplicaSpec,
  type ReplicaStepResult,
} from './parallel.js';
import { lossCurveHtml } from './plot.js';
import { publishModelFolder } from './publish.js';
import type { Recipe, StageRecipe } from './recipe.js';
import { moveRunAside, previousRunFiles, RunLock } from './run-folder.js';
import {
  batchTokens,
  buildStageOptimizer,
  setStageTrainable,
  stageAccumulate,
  stageBatchSize,
  stageSchedule,
  stageSteps,
  supervisedTokens,
} from './stage.js';
import { type ValidationResult, Validator } from './validation.js';

/** What the trainer needs from a model: parameters (Module) and a forward that returns the loss. */
export interface TrainableModel extends Module {
  forward(batch: MultimodalBatch, opts?: { logits?: boolean }): { loss?: tf.Scalar; lmLoss?: tf.Scalar };
}

/** Why a run ended: its plan done, no val improvement for `patience` validations, its time budget, or a stop. */
export type EndReason = 'finished' | 'early-stopping' | 'time-budget' | 'maxSteps' | 'abort';

/** onStep payload: the logged record plus progress figures. */
export interface StepMetrics extends StepRecord {
  totalSteps: number;
  stageSteps: number;
  stepSeconds: number;
  tokensPerSec: number;
  /** Seconds left at the mean step time of this run. */
  eta: number;
}

/** Split micro-batches below this many rows gain little from a second replica (per-op cost dominates). */
const SMALL_MICRO_BATCH = 16;

export type TrainerEvent =
  | {
      type: 'stage-start';
      stage: string;
      index: number;
      steps: number;
      trainableParameters: number;
      resumed: boolean;
    }
  | { type: 'checkpoint'; dir: string; step: number; best?: boolean }
  | { type: 'lora-merged'; stage: string; modules: number; adapterDir: string }
  | {
      type: 'validation';
      step: number;
      stage: string;
      loss: number;
      /** Loss with the media shuffled across samples (null without the control). */
      shuffledLoss: number | null;
      /** This validation is the stage's best so far. */
      best: boolean;
      /** Validations since the best one (early stopping ends the stage at validation.patience). */
      sinceBest: number;
      seconds: number;
    }
  | { type: 'early-stop'; stage: string; step: number; patience: number; best: BestCheckpoint | null }
  /** A time-budgeted stage's plan: after calibration, changed because steps ran slower/faster, or cut at the deadline. */
  | {
      type: 'budget-plan';
      stage: string;
      step: number;
      plan: number;
      why: 'calibrated' | 'replanned' | 'deadline';
    }
  | { type: 'stopped'; step: number; reason: 'abort' | 'maxSteps' }
  /** <output>/model published: `from` says whether it holds the last weights or the best checkpoint's. */
  | { type: 'done'; step: number; modelDir: string; from: 'last' | 'best'; modelStep: number }
  /** Something the user should know that did not stop the run (a stale lock taken over, files moved aside). */
  | { type: 'warning'; message: string };

export interface TrainerOptions {
  model: TrainableModel;
  recipe: Recipe;
  /** The data of a stage (its template, batch size …); called once per stage when a run starts. */
  data: (stage: StageRecipe, index: number) => BatchSource | Promise<BatchSource>;
  onStep?: (metrics: StepMetrics) => void;
  onEvent?: (event: TrainerEvent) => void;
  /**
   * Writes the final loadable model folder; default `model.save(dir)` when the model has one, saveCausalLM for a
   * LlamaForCausalLM, else model.safetensors by parameter name.
   */
  saveModel?: (model: TrainableModel, dir: string) => Promise<void>;
  /** Checkpoint names for LoRA adapter files; default `model.checkpointName(param)` when it has one, else the parameter name. */
  checkpointName?: (param: string) => string;
  /**
   * The held-out data of a stage (recipe data.val with the stage's template), needed when the recipe has
   * `validation`; built once per stage when the stage starts and rewound before each validation.
   */
  validationData?: (stage: StageRecipe, index: number) => BatchSource | Promise<BatchSource>;
  /**
   * How a worker thread builds a replica of `model`: needed when recipe parallel.workers > 1 (data
   * parallelism, train/parallel.ts). With fewer micro-batches per step than workers, `data` is asked for the
   * stage with a smaller batchSize (and a larger accumulate): build the source with the stage's batchSize.
   */
  replica?: ReplicaSpec;
}

export interface RunOptions {
  /** A checkpoint-<step> folder, or 'latest' (newest under recipe.checkpoint.dir). */
  resumeFrom?: string;
  /** Stop (with a checkpoint) before the next step once aborted. */
  signal?: AbortSignal;
  /**
   * Stop once this many global steps are done, with a resumable checkpoint and <output>/model holding the
   * weights at that step (mid-schedule: the lr had not decayed to its end).
   */
  maxSteps?: number;
  /** Time budget in seconds (wins over recipe budget.time); a resumed run gets what its checkpoint left of it. */
  timeBudget?: number;
  /**
   * Start afresh in an output folder that holds an earlier run (metrics.jsonl, checkpoints, model/): its files
   * are moved into `<output>/previous-run-<time>/` (nothing is deleted). Without it such a folder is an error.
   */
  overwrite?: boolean;
}

export interface TrainResult {
  /** completed: the model is final; stopped: resumable (maxSteps, abort). */
  status: 'completed' | 'stopped';
  reason: EndReason;
  step: number;
  /** Every step's record, restored ones included. */
  metrics: StepRecord[];
  /** The newest checkpoint of the run (null when none exists). */
  checkpoint: string | null;
  /** <output>/model when completed or stopped by maxSteps. */
  modelDir: string | null;
  /** The step whose weights <output>/model holds (the best checkpoint's with output.model: best). */
  modelStep: number | null;
  /** The current (last) stage's best validated checkpoint; null without validation. */
  best: BestCheckpoint | null;
  /** How a time-budgeted run used its time; null without a budget. */
  budget: BudgetReport | null;
}

/** A step whose loss or gradient norm is NaN/Inf: nothing is updated or saved after it. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly stage: string,
    what: string,
  ) {
    super(
      `stage "${stage}" step ${step}: ${what} is not finite: training stopped before updating or saving ` +
        '(lower the lr, raise warmup, enable clipping, or check the batch for bad inputs); resume from the last checkpoint',
    );
    this.name = 'NonFiniteLossError';
  }
}

/** A model that writes its own loadable folder (MultimodalModel through its family). */
interface SelfSavingModel {
  save(dir: string): Promise<void>;
}

/** A model whose parameters have other names in its saved checkpoint (HF names of a LLaVA folder). */
interface CheckpointNamingModel {
  checkpointName(param: string): string;
}

async function defaultSaveModel(model: TrainableModel, dir: string): Promise<void> {
  const selfSaving = model as Partial<SelfSavingModel>;
  if (typeof selfSaving.save === 'function') return selfSaving.save.call(model, dir);
  if (model instanceof LlamaForCausalLM) return saveCausalLM(model, dir);
  await saveSafetensors(join(dir, 'model.safetensors'), model.stateDict());
}

function defaultCheckpointName(model: TrainableModel): (param: string) => string {
  const naming = model as Partial<CheckpointNamingModel>;
  const own = naming.checkpointName;
  return typeof own === 'function' ? (param) => own.call(model, param) : (param) => param;
}

/**
 * Runs `write` with every LoRA branch folded into its base weight and detached (a plain, loadable model), then
 * puts the exact base weights and the branches back, so training continues bit for bit.
 */
async function withLoraMerged(model: Module, write: () => Promise<void>): Promise<void> {
  const undo: { linear: Linear; branch: LoraBranch; base: tf.Tensor }[] = [];
  try {
    for (const [, linear, branch] of loraLinears(model)) {
      const base = tf.clone(linear.weight);
      undo.push({ linear, branch, base });
      const delta = branch.delta();
      tf.tidy(() => linear.weight.assign(tf.add(base, delta)));
      delta.dispose();
      linear.detachBranch();
    }
    await write();
  } finally {
    for (const { linear, branch, base } of undo) {
      linear.weight.assign(base as tf.Tensor2D);
      base.dispose();
      if (!linear.branch) linear.attachBranch(branch);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Σp + Σp² per parameter: cheap evidence that a resumed run starts from the same untrained weights. */
async function parameterSums(model: Module): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const [name, p] of model.namedParameters()) {
    const s = tf.tidy(() => tf.add(tf.sum(p), tf.sum(tf.square(p))));
    sums.set(name, (await s.data())[0]); // awaited: webgpu has no sync read
    s.dispose();
  }
  return sums;
}

export class Trainer {
  constructor(readonly opts: TrainerOptions) {}

  /** Runs the recipe's stages (from a checkpoint when asked) until done or stopped. */
  async run(opts: RunOptions = {}): Promise<TrainResult> {
    return new TrainingRun(this.opts, opts).execute();
  }
}

/** One call of Trainer.run: the mutable state of a run. */
class TrainingRun {
  private readonly recipe: Recipe;
  private readonly model: TrainableModel;
  private readonly checkpointRoot: string;
  private readonly metricsPath: string;
  private sources: BatchSource[] = [];
  private plan: number[] = [];
  private state!: TrainerState;
  private trained = new Set<string>();
  private startSums = new Map<string, number>();
  private lora: AppliedLora | null = null;
  private optimizer: Optimizer | null = null;
  private lastCheckpoint: string | null = null;
  private lastSavedStep = -1;
  private secondsThisRun = 0;
  private stepsThisRun = 0;
  /** Training seconds before this process (from the checkpoint) and when this process started its clock. */
  private elapsedBefore = 0;
  private clockStart = performance.now();
  private budget: TimeBudgetPlanner | null = null;
  private validator: Validator | null = null;
  /** The step whose weights <output>/model holds once published. */
  private modelStep: number | null = null;
  /** How the last stage run ended (early stopping, its time budget, or its plan). */
  private stageEnd: 'planned' | 'early-stopping' | 'time-budget' = 'planned';
  private lastStageDone = 0;
  /** The worker replicas of a data-parallel run (null: this thread computes every micro-batch). */
  private replicas: ReplicaGroup | null = null;
  /** Stages whose batches parallel.workers split into more, smaller micro-batches. */
  private readonly splitStages: ReadonlySet<number>;

  constructor(
    private readonly opts: TrainerOptions,
    private readonly runOpts: RunOptions,
  ) {
    const parallel = dataParallelRecipe(opts.recipe);
    this.recipe = parallel.recipe;
    this.splitStages = parallel.splitStages;
    this.model = opts.model;
    this.checkpointRoot = this.recipe.checkpoint.dir ?? join(this.recipe.output, 'checkpoints');
    this.metricsPath = join(this.recipe.output, 'metrics.jsonl');
  }

  /** Planned steps of the whole run; a budgeted run counts its current stage's plan. */
  private get totalSteps(): number {
    const si = this.state.stage;
    const current = this.budget?.plan;
    if (current == null || si >= this.plan.length) return this.plan.reduce((a, b) => a + b, 0);
    const later = this.plan.slice(si + 1).reduce((a, b) => a + b, 0);
    return this.state.step - this.state.stageStep + current + later;
  }

  /** Planned steps of stage `si` (the budget's plan once one is made). */
  private stagePlan(si: number): number {
    return this.budget?.plan ?? this.plan[si];
  }

  /** Seconds of training, counted across resumes. */
  private elapsed(): number {
    return this.elapsedBefore + (performance.now() - this.clockStart) / 1000;
  }

  /** Warnings go to onEvent, or to stderr when nobody listens: none is dropped. */
  private warn(message: string): void {
    if (this.opts.onEvent) this.opts.onEvent({ type: 'warning', message });
    else process.emitWarning(message, 'VistuneTrainerWarning');
  }

  async execute(): Promise<TrainResult> {
    if (this.runOpts.overwrite && this.runOpts.resumeFrom)
      throw new Error(
        `overwrite and resumeFrom '${this.runOpts.resumeFrom}' contradict each other: resume the run, or start afresh with overwrite`,
      );
    const lock = await RunLock.acquire(this.recipe.output, (message) => this.warn(message));
    try {
      return await this.executeLocked();
    } finally {
      await this.replicas?.close();
      this.replicas = null;
      await lock.release();
    }
  }

  /** A fresh run into a folder holding another run's files: an error, or (overwrite) those files moved aside. */
  private async claimRunFolder(): Promise<void> {
    const output = this.recipe.output;
    const previous = await previousRunFiles(output, this.checkpointRoot);
    if (previous.length === 0) return;
    const names = previous.map((p) => relative(output, p) || p).join(', ');
    if (!this.runOpts.overwrite) {
      throw new Error(
        `run folder ${output} already holds a run (${names}): resume it with resumeFrom 'latest' (vistune train --resume latest), ` +
          "train into another output folder, or pass overwrite (--overwrite) to move the earlier run's files aside",
      );
    }
    const moved = await moveRunAside(output, previous);
    const list = [...moved].map(([from, to]) => `${from} → ${to}`).join(', ');
    this.warn(`overwrite: moved the earlier run's files aside (nothing deleted): ${list}`);
  }

  private async executeLocked(): Promise<TrainResult> {
    const { recipe } = this;
    checkDataParallel(recipe, tf.getBackend(), this.opts.replica);
    if (!this.runOpts.resumeFrom) await this.claimRunFolder();
    await ensureDir(this.checkpointRoot, 'checkpoint');
    await removeStaleTempCheckpoints(this.checkpointRoot);
    for (const [i, stage] of recipe.stages.entries()) this.sources.push(await this.opts.data(stage, i));
    this.plan = recipe.stages.map((s, i) => stageSteps(recipe, s, this.sources[i]));
    this.startSums = await parameterSums(this.model);
    let loaded: LoadedCheckpoint | null = null;
    this.state = this.initialState();
    if (this.runOpts.resumeFrom) {
      loaded = await loadCheckpoint(await resolveCheckpoint(this.checkpointRoot, this.runOpts.resumeFrom));
      this.checkResumable(loaded);
      this.state = structuredClone(loaded.state);
    }
    this.trained = new Set(this.state.trainedParameters);
    this.elapsedBefore = this.state.elapsedSeconds ?? 0;
    this.clockStart = performance.now();
    this.budget = this.budgetPlanner();
    if (recipe.validation && !this.opts.validationData)
      throw new Error(
        `${recipe.source}: validation: the trainer was given no validationData (the held-out source built from data.val)`,
      );
    await withFsContext(this.metricsPath, 'write the metrics log', () =>
      writeFile(this.metricsPath, this.state.metrics.map((m) => `${JSON.stringify(m)}\n`).join('')),
    );
    let failed = true;
    try {
      if (this.state.stage >= recipe.stages.length) {
        // Resumed from the final checkpoint: training is done, but a run killed before it published model/
        // left that (and loss.html) undone; publishing again is cheap (hard links) and idempotent.
        this.lastCheckpoint = loaded?.dir ?? null;
        const modelDir = loaded ? await this.publishFinal(loaded.dir) : null;
        failed = false;
        return this.result('completed', 'finished', modelDir);
      }
      this.model.train();
      await this.startReplicas();
      for (let si = this.state.stage; si < recipe.stages.length; si++) {
        const stopped = await this.runStage(si, si === loaded?.state.stage ? loaded : null);
        if (stopped) {
          // maxSteps leaves a model folder of the weights at that step; an abort only its checkpoint.
          const modelDir = stopped === 'maxSteps' ? await this.publish(this.lastCheckpoint as string) : null;
          failed = false;
          return this.result('stopped', stopped, modelDir);
        }
      }
      const modelDir = await this.finish();
      failed = false;
      const reason: EndReason =
        this.stageEnd === 'early-stopping' ? 'early-stopping' : this.budget ? 'time-budget' : 'finished';
      return this.result('completed', reason, modelDir);
    } finally {
      this.model.eval();
      for (const t of [...(loaded?.weights?.values() ?? []), ...(loaded?.optimizer?.values() ?? [])])
        t.dispose();
      await this.writeLossCurve().catch((err: unknown) => {
        // Never let the plot hide the error that stopped the run.
        if (!failed) throw err;
        this.warn(`loss.html not written: ${(err as Error).message}`);
      });
    }
  }

  /** Starts the worker replicas of a recipe with parallel.workers > 1 (after refusing what they cannot do). */
  private async startReplicas(): Promise<void> {
    const workers = this.recipe.parallel.workers;
    if (workers <= 1 || !this.opts.replica) return;
    for (const si of this.splitStages) {
      const stage = this.recipe.stages[si];
      const rows = stageBatchSize(this.recipe, stage);
      if (rows >= SMALL_MICRO_BATCH) continue;
      const whole = stageBatchSize(this.opts.recipe, this.opts.recipe.stages[si]);
      this.warn(
        `stage "${stage.name}": parallel.workers ${workers} splits each batch of ${whole} into micro-batches of ${rows}, ` +
          'and a small micro-batch costs nearly as much as a whole one (per-op cost): expect little or no speed-up ' +
          `(16 split 2 × 8: 0.9× on the demo's model); give the stage accumulate ≥ ${workers}, or batches of ${SMALL_MICRO_BATCH * workers} or more, for one (1.45–1.6× on two cores)`,
      );
    }
    this.replicas = await ReplicaGroup.start(this.opts.replica, workers, tf.getBackend(), this.model);
  }

  /** The run's time budget (run option, else recipe budget, else the one a resumed checkpoint recorded). */
  private budgetPlanner(): TimeBudgetPlanner | null {
    const { recipe, state } = this;
    const seconds = this.runOpts.timeBudget ?? recipe.budget?.time ?? state.budget?.seconds;
    if (seconds === undefined) return null;
    if (!(seconds > 0)) throw new Error(`time budget: expected a positive number of seconds, got ${seconds}`);
    const restored = state.budget && { ...state.budget, seconds };
    return new TimeBudgetPlanner(
      {
        seconds,
        calibrationSteps: recipe.budget?.calibrationSteps ?? 3,
        reserveSeconds: recipe.budget?.reserve ?? 0.03 * seconds,
        baseSteps: this.plan,
      },
      restored,
    );
  }

  private async writeLossCurve(): Promise<void> {
    const path = join(this.recipe.output, 'loss.html');
    const html = lossCurveHtml(this.state.metrics, `${this.recipe.source}: loss`);
    await withFsContext(path, 'write the loss curve', () => writeFile(path, html));
  }

  private initialState(): TrainerState {
    return {
      format: 'vistune-trainer-state-1',
      stages: this.recipe.stages.map((s) => s.name),
      stageSteps: this.plan,
      stage: 0,
      stageStep: 0,
      step: 0,
      microBatches: 0,
      epoch: 0,
      data: null,
      rng: { seed: this.recipe.seed, loraDropoutCalls: 0 },
      trainedParameters: [],
      untrainedFingerprint: 0,
      metrics: [],
    };
  }

  private untrainedFingerprint(trained: ReadonlySet<string>): number {
    let sum = 0;
    for (const [name, s] of this.startSums) if (!trained.has(name)) sum += s;
    return sum;
  }

  /** The checkpoint must come from this recipe (stages, plan, seed) and the same starting model. */
  private checkResumable(loaded: LoadedCheckpoint): void {
    const s = loaded.state;
    const where = `resume from ${loaded.dir}`;
    const names = this.recipe.stages.map((st) => st.name);
    if (s.stages.join('\n') !== names.join('\n'))
      throw new Error(
        `${where}: its stages are [${s.stages}], the recipe's are [${names}]: use the recipe it was trained with`,
      );
    if (s.stageSteps.join() !== this.plan.join())
      throw new Error(
        `${where}: it planned [${s.stageSteps}] steps per stage, this run plans [${this.plan}] (data, batch size, epochs or accumulate changed)`,
      );
    if (s.rng.seed !== this.recipe.seed)
      throw new Error(
        `${where}: it was trained with seed ${s.rng.seed}, the recipe says ${this.recipe.seed}`,
      );
    const fresh = this.untrainedFingerprint(new Set(s.trainedParameters));
    if (Math.abs(fresh - s.untrainedFingerprint) > 1e-5 * Math.max(1, Math.abs(fresh))) {
      throw new Error(
        `${where}: the parameters it did not train differ from this model's (fingerprint ${s.untrainedFingerprint} vs ${fresh}): ` +
          'build the model exactly as the original run did (same recipe model and seed)',
      );
    }
  }

  /** Runs stage `si` to its end (or to early stopping / its budget); returns why the run stopped inside it. */
  private async runStage(si: number, loaded: LoadedCheckpoint | null): Promise<'abort' | 'maxSteps' | null> {
    const { recipe, model, state } = this;
    const stage = recipe.stages[si];
    const where = `${recipe.source}: stages[${si}]`;
    setStageTrainable(model, stage, where);
    this.lora = null;
    if (stage.lora) {
      try {
        this.lora = applyLora(model, { ...stage.lora, seed: recipe.seed + si });
      } catch (err) {
        throw new Error(`${where}.lora.targets: ${(err as Error).message}`, { cause: err });
      }
    }
    const params = model.trainableParameters();
    for (const [name] of params) this.trained.add(name);
    if (loaded) this.restore(loaded, si);
    await this.replicas?.syncStage(model, stage, where, recipe.seed + si);
    if (state.validation?.stage !== si) state.validation = { stage: si, best: null, sinceBest: 0 };
    const baseSchedule = stageSchedule(stage, this.plan[si]);
    const schedule = this.budget ? this.budget.schedule(baseSchedule, this.plan[si]) : baseSchedule;
    const optimizer = buildStageOptimizer(params, recipe, stage, schedule);
    this.optimizer = optimizer;
    let stageEnd: 'planned' | 'early-stopping' | 'time-budget' = 'planned';
    try {
      if (loaded?.optimizer) optimizer.loadState(loaded.optimizer, { source: loaded.dir });
      if (recipe.validation && this.opts.validationData) {
        const source = await this.opts.validationData(stage, si);
        this.validator = new Validator(source, {
          batches: recipe.validation.batches,
          shuffledControl: recipe.validation.shuffledControl,
          seed: recipe.seed,
        });
      }
      this.budget?.startStage(si, stage.name, state.stageStep, this.elapsed());
      this.opts.onEvent?.({
        type: 'stage-start',
        stage: stage.name,
        index: si,
        steps: this.stagePlan(si),
        trainableParameters: params.reduce((n, [, p]) => n + p.size, 0),
        resumed: loaded !== null,
      });
      while (this.stageHasSteps(si)) {
        const reason = this.stopReason();
        if (reason) {
          // maxSteps also leaves a loadable model: the checkpoint is written again with one if it had none.
          if (this.lastSavedStep !== state.step || reason === 'maxSteps')
            await this.checkpoint(si, { withModel: reason === 'maxSteps' });
          this.opts.onEvent?.({ type: 'stopped', step: state.step, reason });
          return reason;
        }
        const endedEarly = await this.stepAndValidate(si, optimizer, schedule);
        if (endedEarly) {
          stageEnd = endedEarly;
          break;
        }
      }
    } finally {
      optimizer.dispose();
      this.optimizer = null;
      (this.validator?.source as { dispose?: () => void } | undefined)?.dispose?.();
      this.validator = null;
    }
    this.stageEnd = stageEnd;
    this.lastStageDone = state.stageStep;
    this.budget?.endStage(state.stageStep, stageEnd === 'early-stopping');
    await this.endStage(si);
    return null;
  }

  /**
   * One step, then (when due) validation, the metrics line, best-checkpoint keeping and periodic checkpoints.
   * Returns why the stage ends here before its plan (early stopping, its time budget), else null.
   */
  private async stepAndValidate(
    si: number,
    optimizer: Optimizer,
    schedule: LrSchedule,
  ): Promise<'early-stopping' | 'time-budget' | null> {
    const { recipe, state } = this;
    const stage = recipe.stages[si];
    const { record, stepSeconds, tokens } = await this.step(si, optimizer, schedule);
    let endsStage = false;
    if (this.budget) {
      const plannedBefore = this.budget.plan;
      const calibratedBefore = state.budget?.calibratedPlan ?? null;
      endsStage = this.budget.afterStep(state.stageStep, this.elapsed());
      this.announcePlan(stage.name, plannedBefore, calibratedBefore, endsStage);
    }
    const lastOfStage = endsStage || state.stageStep >= this.stagePlan(si);
    const validation = this.validationDue(lastOfStage) ? await this.validate(si, record) : null;
    const improved = validation?.improved ?? false;
    record.time = new Date().toISOString();
    record.elapsed = this.elapsed();
    state.metrics.push(record);
    await withFsContext(this.metricsPath, 'append to the metrics log', () =>
      appendFile(this.metricsPath, `${JSON.stringify(record)}\n`),
    );
    faultPoint('step:metrics-appended', record.step);
    this.secondsThisRun += stepSeconds;
    this.stepsThisRun++;
    const planned = this.totalSteps;
    this.opts.onStep?.({
      ...record,
      totalSteps: planned,
      stageSteps: this.stagePlan(si),
      stepSeconds,
      tokensPerSec: tokens / stepSeconds,
      eta: this.budget
        ? Math.max(0, this.budget.opts.seconds - this.elapsed())
        : (this.secondsThisRun / this.stepsThisRun) * (planned - record.step),
    });
    const patience = recipe.validation?.patience;
    const early =
      validation !== null && patience !== undefined && (state.validation?.sinceBest ?? 0) >= patience;
    const endsRun = (lastOfStage || early) && si === recipe.stages.length - 1;
    const every = recipe.checkpoint.every;
    const periodic = every > 0 && state.step % every === 0 && !endsRun;
    const keepBest = improved && recipe.checkpoint.keepBest && !endsRun;
    if (periodic || keepBest) {
      const started = performance.now();
      await this.checkpoint(si, { withModel: keepBest, best: keepBest });
      this.budget?.addOverhead((performance.now() - started) / 1000);
    }
    if (early) {
      this.opts.onEvent?.({
        type: 'early-stop',
        stage: stage.name,
        step: state.step,
        patience: patience as number,
        best: state.validation?.best ?? null,
      });
      return 'early-stopping';
    }
    return endsStage ? 'time-budget' : null;
  }

  /** Whether stage `si` has steps left: its plan's, or, budgeted, until its first timed step made one. */
  private stageHasSteps(si: number): boolean {
    const budgeted = this.budget?.plan;
    if (budgeted === null) return true;
    return this.state.stageStep < (budgeted ?? this.plan[si]);
  }

  /** Says how a budgeted stage's plan changed in the step just done. */
  private announcePlan(
    stage: string,
    plannedBefore: number | null,
    calibratedBefore: number | null,
    deadline: boolean,
  ): void {
    const budget = this.budget;
    const plan = budget?.plan;
    if (!budget || plan == null) return;
    const snapshot = budget.snapshot();
    const step = this.state.step;
    let why: 'calibrated' | 'replanned' | 'deadline' | null = null;
    if (deadline && plannedBefore !== null && this.state.stageStep < plannedBefore) why = 'deadline';
    else if (calibratedBefore === null && snapshot.calibratedPlan !== null) why = 'calibrated';
    else if (calibratedBefore !== null && plan !== plannedBefore) why = 'replanned';
    this.state.budget = snapshot;
    if (why) this.opts.onEvent?.({ type: 'budget-plan', stage, step, plan, why });
  }

  /** Validation runs every validation.every steps and at each stage's last step. */
  private validationDue(lastOfStage: boolean): boolean {
    const v = this.recipe.validation;
    if (!v || !this.validator) return false;
    return lastOfStage || (v.every > 0 && this.state.step % v.every === 0);
  }

  /** Scores the held-out data, writes the figures into the step's record, tracks the best and tells onEvent. */
  private async validate(
    si: number,
    record: StepRecord,
  ): Promise<{ result: ValidationResult; improved: boolean }> {
    const started = performance.now();
    const result = await (this.validator as Validator).run(this.model);
    const seconds = (performance.now() - started) / 1000;
    this.budget?.addOverhead(seconds);
    this.budget?.setEndSeconds(seconds);
    if (!Number.isFinite(result.loss))
      throw new NonFiniteLossError(record.step, record.stage, `the validation loss (${result.loss})`);
    record.val_loss = result.loss;
    if (result.shuffledLoss !== null) record.val_loss_shuffled = result.shuffledLoss;
    else if (this.recipe.validation?.shuffledControl && result.samples > 0 && result.shuffledSamples === 0)
      this.warn(
        `validation at step ${record.step}: no two held-out samples have media of the same count and shape, so the shuffled-media control was skipped`,
      );
    const improved = this.trackBest(si, result);
    this.opts.onEvent?.({
      type: 'validation',
      step: record.step,
      stage: this.recipe.stages[si].name,
      loss: result.loss,
      shuffledLoss: result.shuffledLoss,
      best: improved,
      sinceBest: (this.state.validation as ValidationState).sinceBest,
      seconds,
    });
    return { result, improved };
  }

  /** Updates the stage's best validation (true: this one is the new best). */
  private trackBest(si: number, result: ValidationResult): boolean {
    const v = this.state.validation as ValidationState;
    if (v.best !== null && !(result.loss < v.best.valLoss - (this.recipe.validation?.minDelta ?? 0))) {
      v.sinceBest++;
      return false;
    }
    const step = this.state.step;
    v.best = {
      step,
      stage: this.recipe.stages[si].name,
      valLoss: result.loss,
      checkpoint: `checkpoint-${step}`,
    };
    v.sinceBest = 0;
    return true;
  }

  private stopReason(): 'abort' | 'maxSteps' | null {
    if (this.runOpts.signal?.aborted) return 'abort';
    if (this.runOpts.maxSteps !== undefined && this.state.step >= this.runOpts.maxSteps) return 'maxSteps';
    return null;
  }

  /** Weights, data position and dropout stream of a checkpoint taken inside stage `si`. */
  private restore(loaded: LoadedCheckpoint, si: number): void {
    const s = loaded.state;
    if (!loaded.weights) throw new Error(`resume from ${loaded.dir}: it has no trainable weights file`);
    const missing = s.trainedParameters.filter((n) => !loaded.weights?.has(n));
    if (missing.length)
      throw new Error(
        `resume from ${loaded.dir}: trained parameters missing from its weights: ${missing.join(', ')}`,
      );
    const { unexpected } = this.model.loadStateDict(loaded.weights, { strict: false, source: loaded.dir });
    if (unexpected.length) {
      throw new Error(
        `resume from ${loaded.dir}: weights the model does not have: ${unexpected.slice(0, 10).join(', ')} (a different model or LoRA setup?)`,
      );
    }
    if (s.data) this.sources[si].restore(s.data);
    if (this.lora) this.lora.dropout.calls = s.rng.loraDropoutCalls;
  }

  /** Pulls the next micro-batch, starting a new epoch when the current one is over. */
  private async nextBatch(si: number): Promise<MultimodalBatch> {
    const source = this.sources[si];
    const batch = (await source.next()) ?? (await source.next());
    if (!batch)
      throw new Error(
        `stage "${this.recipe.stages[si].name}": the data source returned no batch for a whole epoch`,
      );
    this.state.microBatches++;
    this.state.epoch = this.state.microBatches / source.length;
    return batch;
  }

  /** Adds one micro-batch's weighted gradients to the step's accumulator and its loss to the step's sums. */
  private async accumulateMicroBatch(
    batch: MultimodalBatch,
    accumulator: GradientAccumulator,
    sums: { loss: number; weight: number },
    stage: StageRecipe,
    stepNumber: number,
  ): Promise<void> {
    const weight = supervisedTokens(batch) ?? 1;
    if (weight === 0) return; // nothing supervised: no gradient to add
    const { loss, grads } = await computeGradientsAsync(() => {
      const out = this.model.forward(batch, { logits: false });
      if (!out.loss)
        throw new Error(`stage "${stage.name}": the model returned no loss (does the batch carry labels?)`);
      return out.loss;
    }, this.model.namedParameters());
    try {
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(stepNumber, stage.name, `the loss (${loss})`);
      accumulator.add(grads, weight);
    } finally {
      disposeGradients(grads);
    }
    sums.loss += loss * weight;
    sums.weight += weight;
  }

  /**
   * The step's micro-batches on every replica at once: each worker gets its share as soon as it is loaded
   * (workers first, in data order), this thread computes the last share; their gradient sums join this
   * thread's accumulator.
   */
  private async accumulateOnReplicas(
    replicas: ReplicaGroup,
    si: number,
    accumulator: GradientAccumulator,
    sums: { loss: number; weight: number; tokens: number },
    stepNumber: number,
  ): Promise<void> {
    const stage = this.recipe.stages[si];
    const maxRows = stageBatchSize(this.recipe, stage);
    const load = async (count: number): Promise<MultimodalBatch[]> => {
      const batches: MultimodalBatch[] = [];
      try {
        for (let m = 0; m < count; m++) {
          const batch = await this.nextBatch(si);
          batches.push(batch);
          sums.tokens += batchTokens(batch);
          if (this.splitStages.has(si) && batch.inputIds.shape[0] > maxRows)
            throw new Error(
              `stage "${stage.name}": the data source returned a batch of ${batch.inputIds.shape[0]} samples; parallel.workers ` +
                `${this.recipe.parallel.workers} asked for batches of ${maxRows} (stage.batchSize) to split each step: build the source with the stage's batchSize`,
            );
        }
        return batches;
      } catch (err) {
        for (const batch of batches) disposeMultimodalBatch(batch);
        throw err;
      }
    };
    const shares = replicas.shares(stageAccumulate(this.recipe, stage));
    const results: Promise<ReplicaStepResult>[] = [];
    for (const [i, share] of shares.workers.entries()) results.push(replicas.send(i, await load(share)));
    const own = await load(shares.own);
    try {
      for (const batch of own) await this.accumulateMicroBatch(batch, accumulator, sums, stage, stepNumber);
    } finally {
      for (const batch of own) disposeMultimodalBatch(batch);
    }
    for (const [i, result] of (await Promise.all(results)).entries()) {
      if (result.nonFiniteLoss !== null)
        throw new NonFiniteLossError(
          stepNumber,
          stage.name,
          `the loss (${result.nonFiniteLoss}, on worker ${i + 1})`,
        );
      replicas.addGradients(accumulator, i, result);
      sums.loss += result.lossSum;
      sums.weight += result.weightSum;
    }
  }

  /** One optimizer step: accumulate over micro-batches, clip, update; returns its record (not yet logged). */
  private async step(
    si: number,
    optimizer: Optimizer,
    schedule: LrSchedule,
  ): Promise<{ record: StepRecord; stepSeconds: number; tokens: number }> {
    const { state, recipe } = this;
    const stage = recipe.stages[si];
    const started = performance.now();
    const stepNumber = state.step + 1;
    const accumulator = new GradientAccumulator();
    const sums = { loss: 0, weight: 0, tokens: 0 };
    let gradNorm: number;
    try {
      if (this.replicas) await this.accumulateOnReplicas(this.replicas, si, accumulator, sums, stepNumber);
      else
        for (let m = 0; m < stageAccumulate(recipe, stage); m++) {
          const batch = await this.nextBatch(si);
          try {
            sums.tokens += batchTokens(batch);
            await this.accumulateMicroBatch(batch, accumulator, sums, stage, stepNumber);
          } finally {
            disposeMultimodalBatch(batch);
          }
        }
      if (sums.weight === 0) {
        throw new Error(
          `stage "${stage.name}" step ${stepNumber}: none of its micro-batches has a supervised token (all labels -100): check truncation (data.maxLength) and label building`,
        );
      }
      const mean = accumulator.mean();
      let grads = mean;
      try {
        const clip = recipe.optimizer.clip;
        if (clip !== null) {
          const clipped = await clipByGlobalNormAsync(mean, clip);
          gradNorm = clipped.norm;
          grads = clipped.grads;
        } else gradNorm = await globalNormAsync(mean);
        if (!Number.isFinite(gradNorm))
          throw new NonFiniteLossError(stepNumber, stage.name, `the gradient norm (${gradNorm})`);
        optimizer.step(grads);
      } finally {
        disposeGradients(mean);
        if (grads !== mean) disposeGradients(grads);
      }
      await this.replicas?.publishParameters();
    } finally {
      accumulator.dispose();
    }
    const lr = stage.lr * schedule(optimizer.stepCount - 1);
    state.step = stepNumber;
    state.stageStep++;
    const record: StepRecord = {
      step: stepNumber,
      stage: stage.name,
      stageIndex: si,
      stageStep: state.stageStep,
      epoch: state.epoch,
      loss: sums.loss / sums.weight,
      lr,
      gradNorm,
      tokens: sums.tokens,
    };
    return { record, stepSeconds: (performance.now() - started) / 1000, tokens: sums.tokens };
  }

  /** The best checkpoint's folder: pinned out of pruning. */
  private bestDir(): string | null {
    const best = this.state.validation?.best;
    return best ? join(this.checkpointRoot, best.checkpoint) : null;
  }

  /** What every checkpoint's trainer state records besides the step counters. */
  private stampState(): void {
    const { state } = this;
    state.trainedParameters = [...this.trained];
    state.untrainedFingerprint = this.untrainedFingerprint(this.trained);
    state.elapsedSeconds = this.elapsed();
    if (this.budget) state.budget = this.budget.snapshot();
  }

  /**
   * A resumable checkpoint of the run as it is now (inside stage `si`); `withModel` adds a loadable model folder
   * (LoRA folded in), `best` marks it as the best validated one.
   */
  private async checkpoint(si: number, opts: { withModel?: boolean; best?: boolean } = {}): Promise<void> {
    const { state, model } = this;
    this.stampState();
    state.data = this.sources[si].state();
    state.rng.loraDropoutCalls = this.lora?.dropout.calls ?? 0;
    const live = model.stateDict();
    const weights = new Map<string, tf.Tensor>(
      state.trainedParameters.map((n) => [n, live.get(n) as tf.Variable]),
    );
    const saveModel = this.opts.saveModel ?? defaultSaveModel;
    const writeModel = opts.withModel
      ? (dir: string) => withLoraMerged(model, () => saveModel(model, dir))
      : undefined;
    const optimizerState = this.optimizer?.state();
    const pinned = this.bestDir();
    try {
      this.lastCheckpoint = await saveCheckpoint(
        this.checkpointRoot,
        { state, weights, optimizer: optimizerState, writeModel },
        { keep: this.recipe.checkpoint.keep, pinned: pinned ? [pinned] : [] },
      );
    } finally {
      if (optimizerState) tf.dispose([...optimizerState.values()]);
    }
    this.lastSavedStep = state.step;
    this.opts.onEvent?.({
      type: 'checkpoint',
      dir: this.lastCheckpoint,
      step: state.step,
      ...(opts.best ? { best: true } : {}),
    });
  }

  /** After a stage's last step: save and merge its LoRA, move the state to the next stage. */
  private async endStage(si: number): Promise<void> {
    const { state, recipe, model } = this;
    const stage = recipe.stages[si];
    if (this.lora) {
      const adapterDir = join(recipe.output, 'adapters', stage.name);
      const checkpointName = this.opts.checkpointName ?? defaultCheckpointName(model);
      await saveLoraAdapter(model, adapterDir, { checkpointName });
      // Parameters trained next to LoRA (the projector) go alongside, as LLaVA's non_lora_trainables.
      const others = model.trainableParameters().filter(([n]) => !/\.lora_[AB]\.weight$/.test(n));
      if (others.length)
        await saveSafetensors(
          join(adapterDir, 'non_lora_trainables.safetensors'),
          new Map(others.map(([n, p]) => [checkpointName(n), p])),
        );
      const merged = mergeLora(model);
      for (const path of merged) {
        this.trained.delete(`${path}.lora_A.weight`);
        this.trained.delete(`${path}.lora_B.weight`);
        this.trained.add(`${path}.weight`); // the merged update lives in the base weight now
      }
      this.lora = null;
      this.opts.onEvent?.({ type: 'lora-merged', stage: stage.name, modules: merged.length, adapterDir });
    }
    Object.assign(state, { stage: si + 1, stageStep: 0, microBatches: 0, epoch: 0, data: null });
    state.rng.loraDropoutCalls = 0;
  }

  /** Final checkpoint (a loadable model folder + trainer state), published as <output>/model. */
  private async finish(): Promise<string> {
    const { state, recipe, model } = this;
    this.stampState();
    const saveModel = this.opts.saveModel ?? defaultSaveModel;
    const pinned = this.bestDir();
    this.lastCheckpoint = await saveCheckpoint(
      this.checkpointRoot,
      { state, writeModel: (dir) => saveModel(model, dir) },
      { keep: recipe.checkpoint.keep, pinned: pinned ? [pinned] : [] },
    );
    this.lastSavedStep = state.step;
    this.opts.onEvent?.({ type: 'checkpoint', dir: this.lastCheckpoint, step: state.step });
    faultPoint('final:checkpoint-saved', state.step);
    return this.publishFinal(this.lastCheckpoint);
  }

  /** <output>/model at the end: the last checkpoint's model, or (output.model: best) the best checkpoint's. */
  private async publishFinal(lastCheckpoint: string): Promise<string> {
    const best = this.state.validation?.best;
    const bestDir = this.bestDir();
    if (this.recipe.finalModel === 'best' && best && bestDir) {
      if (await exists(bestDir)) return this.publish(bestDir, 'best', best.step);
      this.warn(
        `output.model is best, but the best checkpoint ${bestDir} is gone: publishing the last weights`,
      );
    }
    return this.publish(lastCheckpoint, 'last', this.state.step);
  }

  /** Publishes a checkpoint's model files as <output>/model. */
  private async publish(
    checkpoint: string,
    from: 'last' | 'best' = 'last',
    modelStep = this.state.step,
  ): Promise<string> {
    const target = join(this.recipe.output, 'model');
    const modelDir = await withFsContext(target, 'publish the model folder', () =>
      publishModelFolder(checkpoint, target),
    );
    faultPoint('final:model-published', this.state.step);
    this.modelStep = modelStep;
    this.opts.onEvent?.({ type: 'done', step: this.state.step, modelDir, from, modelStep });
    return modelDir;
  }

  private async result(
    status: TrainResult['status'],
    reason: EndReason,
    modelDir: string | null,
  ): Promise<TrainResult> {
    // Report only a checkpoint that is there (one pruned or moved by someone else is not offered for resume).
    const checkpoint =
      this.lastCheckpoint !== null && (await exists(this.lastCheckpoint)) ? this.lastCheckpoint : null;
    return {
      status,
      reason,
      step: this.state.step,
      metrics: this.state.metrics,
      checkpoint,
      modelDir,
      modelStep: modelDir ? this.modelStep : null,
      best: this.state.validation?.best ?? null,
      budget: this.budget?.report(this.state.step, this.elapsed(), this.lastStageDone) ?? null,
    };
  }
}
