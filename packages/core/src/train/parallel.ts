// Data-parallel training on one machine: the micro-batches of an optimizer step are computed by `workers`
// model replicas at once (this thread is replica 0, the others are worker_threads), so tfjs's many small
// single-threaded ops use every core. Each worker builds the same model from a ReplicaSpec, gets every
// parameter value at each stage start, reads the updated trainable ones from one shared buffer before each
// step, and writes Σ weight·gradient of its micro-batches into its own shared buffer, which this thread adds
// to its accumulator: the step's mean gradient is the single-process one up to float summation order.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { disposeMultimodalBatch } from '../data/loader.js';
import type { MultimodalBatch } from '../multimodal/model.js';
import { Dropout } from '../nn/dropout.js';
import type { Module } from '../nn/module.js';
import type { GradientAccumulator } from '../optim/accumulate.js';
import { type EncodedValue, encodeBatch } from './parallel-batch.js';
import type { Recipe, StageRecipe } from './recipe.js';
import { stageAccumulate, stageBatchSize } from './stage.js';

/**
 * How a worker thread builds its model replica: it imports `module` and calls its export `exportName` with
 * `options`, which must return (or resolve to) a model with the same parameter names and shapes as the
 * trained one. Values do not matter: every parameter is copied from the main thread.
 */
export interface ReplicaSpec {
  /** A file URL or package specifier the worker can import (e.g. `new URL('./replica.js', import.meta.url).href`). */
  module: string;
  exportName: string;
  /** Structured-clone data handed to the export (a model config, a recipe path …). */
  options?: unknown;
  /** The worker entry script; default @vistune/core's dist/parallel-worker.js (tests point it at a bundle). */
  workerScript?: string | URL;
}

/** One trainable parameter's place in the shared parameter and gradient buffers. */
export interface ParameterSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** What a worker reports about its replica after a stage's setup: every parameter, for the sameness check. */
export interface ReplicaParameter {
  name: string;
  shape: number[];
  trainable: boolean;
}

export type ToReplica =
  | {
      type: 'stage';
      stage: StageRecipe;
      /** Field prefix for errors, e.g. `recipe.yaml: stages[1]`. */
      where: string;
      /** The seed applyLora used on the main thread (its A initialisation is overwritten anyway). */
      loraSeed: number;
      values: [string, Float32Array][];
      slots: ParameterSlot[];
      parameters: SharedArrayBuffer;
      gradients: SharedArrayBuffer;
    }
  | { type: 'step'; batches: EncodedValue[]; parameterVersion: number };

export type FromReplica =
  | { type: 'ready' }
  | { type: 'stage-ready'; parameters: ReplicaParameter[] }
  | {
      type: 'result';
      lossSum: number;
      weightSum: number;
      microBatches: number;
      /** Trainable parameters the loss reached (others got no gradient, as in computeGradients). */
      gradientNames: string[];
      /** The first non-finite micro-batch loss, or null. */
      nonFiniteLoss: number | null;
    }
  | { type: 'error'; message: string; stack?: string };

export type ReplicaStepResult = Extract<FromReplica, { type: 'result' }>;

/** What the worker entry receives as workerData. */
export interface ReplicaWorkerData {
  vistuneReplica: ReplicaSpec;
  backend: string;
}

const SUPPORTED_BACKENDS = ['wasm', 'cpu'];

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The recipe as `parallel.workers` replicas run it. A stage with fewer micro-batches than replicas gets
 * smaller ones instead: its batch size divided and its accumulate multiplied by the same factor, so the
 * effective batch (samples per optimizer step) is unchanged (batchSize 16, 2 workers → 2 micro-batches of 8).
 * Throws naming the field when the batch size cannot be split evenly.
 */
export function dataParallelRecipe(recipe: Recipe): { recipe: Recipe; splitStages: Set<number> } {
  const workers = recipe.parallel.workers;
  const splitStages = new Set<number>();
  if (workers <= 1) return { recipe, splitStages };
  const stages = recipe.stages.map((stage, i) => {
    const accumulate = stageAccumulate(recipe, stage);
    if (accumulate >= workers) return stage;
    const factor = workers / gcd(accumulate, workers);
    const batchSize = stageBatchSize(recipe, stage);
    if (batchSize % factor !== 0)
      throw new Error(
        `${recipe.source}: stages[${i}] ("${stage.name}"): parallel.workers ${workers} needs at least ${workers} micro-batches per step, ` +
          `and its batch size ${batchSize} cannot be split into ${factor} equal parts: set the stage's accumulate to ${workers} ` +
          `(or optimizer.accumulate), a batch size divisible by ${factor}, or fewer workers`,
      );
    splitStages.add(i);
    return { ...stage, batchSize: batchSize / factor, accumulate: accumulate * factor };
  });
  return { recipe: { ...recipe, stages }, splitStages };
}

/** Refuses what replicas cannot reproduce, naming the field and the fix. */
export function checkDataParallel(recipe: Recipe, backend: string, replica: ReplicaSpec | undefined): void {
  const workers = recipe.parallel.workers;
  if (workers <= 1) return;
  const off = 'or set parallel.workers: 1 (vistune train --workers 1)';
  if (!SUPPORTED_BACKENDS.includes(backend))
    throw new Error(
      `${recipe.source}: parallel.workers ${workers}: data-parallel training runs on the wasm or cpu backend, this run uses ${backend} ` +
        `(one device is shared, replicas would not run side by side): use --backend wasm, ${off}`,
    );
  recipe.stages.forEach((stage, i) => {
    if (stage.lora && stage.lora.dropout > 0)
      throw new Error(
        `${recipe.source}: stages[${i}].lora.dropout ${stage.lora.dropout}: LoRA dropout draws its masks from one resumable stream, ` +
          `which replicas cannot share (parallel.workers ${workers}): set lora.dropout: 0, ${off}`,
      );
  });
  if (!replica)
    throw new Error(
      `${recipe.source}: parallel.workers ${workers}: the trainer was given no replica (how a worker thread builds the model): ` +
        `pass TrainerOptions.replica, ${off}`,
    );
  const cores = availableParallelism();
  if (workers > cores)
    throw new Error(
      `${recipe.source}: parallel.workers ${workers} is more than the ${cores} cores here (replicas would only take turns): ` +
        `set parallel.workers to at most ${cores}`,
    );
}

/** Dropout layers with p > 0 draw their own masks: replicas would not reproduce one process's run. */
function activeDropout(module: Module, prefix = ''): string[] {
  const found: string[] = [];
  for (const [name, child] of module.namedChildren()) {
    const path = `${prefix}${name}`;
    if (child instanceof Dropout && child.p > 0) found.push(path);
    found.push(...activeDropout(child, `${path}.`));
  }
  return found;
}

const DEFAULT_WORKER_SCRIPT = new URL('./parallel-worker.js', import.meta.url);

interface HeapBackend {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/** The wasm backend (whose tensors live in its heap, written by copy), or null on others. */
function wasmHeap(): HeapBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' ? (backend as HeapBackend) : null;
}

/**
 * Copies a float32 tensor's values into `into` at `offset`: on wasm straight from its heap (one copy, no
 * allocation; a 20 M-parameter model would otherwise allocate 80 MB a step per copy), elsewhere via data().
 */
export async function copyTensorInto(t: tf.Tensor, into: Float32Array, offset: number): Promise<void> {
  const heap = wasmHeap();
  if (heap && t.dtype === 'float32') into.set(heap.typedArrayFromHeap(t), offset);
  else into.set((await t.data()) as Float32Array, offset);
}

/**
 * A new tensor of `size` floats of `from` at `offset`: wasm copies what it is given into its heap, so the
 * shared memory is read in place; the cpu backend keeps the array it gets, so that gets a private copy.
 */
export function tensorFromShared(
  from: Float32Array,
  offset: number,
  size: number,
  shape: number[],
): tf.Tensor {
  const values = wasmHeap() ? from.subarray(offset, offset + size) : from.slice(offset, offset + size);
  return tf.tensor(values, shape, 'float32');
}

/** A request to one worker, settled by its reply or by its failure. */
interface Pending {
  resolve(message: FromReplica): void;
  reject(error: Error): void;
}

/** One worker thread and the request it is serving. */
class ReplicaWorker {
  private pending: Pending | null = null;
  private failure: Error | null = null;
  private closing = false;

  constructor(
    readonly index: number,
    readonly thread: Worker,
  ) {
    thread.on('message', (message: FromReplica) => {
      if (message.type === 'error') {
        const error = new Error(`data-parallel worker ${index}: ${message.message}`);
        if (message.stack) error.stack = `${error.message}\n(worker stack)\n${message.stack}`;
        this.fail(error);
      } else {
        const pending = this.pending;
        this.pending = null;
        pending?.resolve(message);
      }
    });
    thread.on('error', (error) =>
      this.fail(new Error(`data-parallel worker ${index} crashed: ${error.message}`, { cause: error })),
    );
    thread.on('exit', (code) => {
      if (!this.closing)
        this.fail(new Error(`data-parallel worker ${index} exited unexpectedly (exit code ${code})`));
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const pending = this.pending;
    this.pending = null;
    pending?.reject(this.failure);
  }

  /** The worker's next message; rejects at once when it failed, or when it fails before answering. */
  next(): Promise<FromReplica> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  /** Sends a message and waits for the answer of the given type. */
  async request<T extends FromReplica['type']>(
    message: ToReplica | null,
    expected: T,
    transfer: ArrayBuffer[] = [],
  ): Promise<Extract<FromReplica, { type: T }>> {
    const answer = this.next();
    if (message) this.thread.postMessage(message, transfer);
    const reply = await answer;
    if (reply.type !== expected)
      throw new Error(`data-parallel worker ${this.index}: expected '${expected}', got '${reply.type}'`);
    return reply as Extract<FromReplica, { type: T }>;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.thread.terminate();
  }
}

/**
 * The worker replicas of a run. The caller computes replica 0's micro-batches itself; `dispatch` sends the
 * others' and `addGradients` folds their shared gradient sums into the step's accumulator.
 */
export class ReplicaGroup {
  private slots: ParameterSlot[] = [];
  private parameterView = new Float32Array(new SharedArrayBuffer(0));
  private gradientViews: Float32Array<SharedArrayBuffer>[] = [];
  private trainable: [string, tf.Variable][] = [];
  private parameterVersion = 0;

  private constructor(private readonly workers: ReplicaWorker[]) {}

  /** Replicas in all, this thread included. */
  get size(): number {
    return this.workers.length + 1;
  }

  /** Starts `replicas − 1` workers on `backend`, each building its model from `spec`; fails with a worker's error. */
  static async start(
    spec: ReplicaSpec,
    replicas: number,
    backend: string,
    model: Module,
  ): Promise<ReplicaGroup> {
    const dropout = activeDropout(model);
    if (dropout.length)
      throw new Error(
        `parallel.workers ${replicas}: the model has dropout layers (${dropout.slice(0, 3).join(', ')}) whose masks replicas cannot share: ` +
          'set their probability to 0, or parallel.workers: 1',
      );
    const { workerScript, ...replica } = spec;
    const workers: ReplicaWorker[] = [];
    const group = new ReplicaGroup(workers);
    try {
      for (let i = 1; i < replicas; i++) {
        const workerData: ReplicaWorkerData = { vistuneReplica: replica, backend };
        const thread = new Worker(workerScript ?? DEFAULT_WORKER_SCRIPT, {
          workerData,
          // One core per replica: native SGEMM threads would only compete with the other replicas.
          env: { ...process.env, VISTUNE_NATIVE_THREADS: '1' },
        });
        workers.push(new ReplicaWorker(i, thread));
      }
      await Promise.all(workers.map((w) => w.request(null, 'ready')));
      return group;
    } catch (error) {
      await group.close();
      throw error;
    }
  }

  /**
   * Copies the stage's model to every worker (after this thread set the trainable set, applied LoRA and
   * restored a checkpoint): the worker repeats the setup, checks its parameters are these, takes every value.
   */
  async syncStage(model: Module, stage: StageRecipe, where: string, loraSeed: number): Promise<void> {
    const all = model.namedParameters();
    this.trainable = all.filter(([, p]) => p.trainable);
    let offset = 0;
    this.slots = this.trainable.map(([name, p]) => {
      const slot = { name, shape: [...p.shape], offset, size: p.size };
      offset += p.size;
      return slot;
    });
    const parameters = new SharedArrayBuffer(offset * 4);
    this.parameterView = new Float32Array(parameters);
    const gradients = this.workers.map(() => new SharedArrayBuffer(offset * 4));
    this.gradientViews = gradients.map((g) => new Float32Array(g));
    await this.publishParameters();
    const values: [string, Float32Array][] = [];
    for (const [name, p] of all) {
      if (p.dtype !== 'float32')
        throw new Error(
          `parallel.workers: parameter ${name} is ${p.dtype}; replicas copy float32 parameters only`,
        );
      values.push([name, (await p.data()) as Float32Array]);
    }
    const expected = all.map(([name, p]) => `${name} [${p.shape}]${p.trainable ? ' trainable' : ''}`);
    await Promise.all(
      this.workers.map(async (w, i) => {
        const message: ToReplica = {
          type: 'stage',
          stage,
          where,
          loraSeed,
          values,
          slots: this.slots,
          parameters,
          gradients: gradients[i],
        };
        const reply = await w.request(message, 'stage-ready');
        const got = reply.parameters.map((p) => `${p.name} [${p.shape}]${p.trainable ? ' trainable' : ''}`);
        const differ = expected.findIndex((line, j) => got[j] !== line);
        if (differ >= 0 || got.length !== expected.length)
          throw new Error(
            `data-parallel worker ${w.index}: its replica differs from the trained model at parameter ${differ >= 0 ? differ : Math.min(got.length, expected.length)} ` +
              `(main: ${expected[differ] ?? '(none)'}; worker: ${got[differ >= 0 ? differ : expected.length] ?? '(none)'}): ` +
              'the ReplicaSpec must build the same model (config, heads, task setup)',
          );
      }),
    );
  }

  /** Writes the trainable parameters' current values where the workers read them before their next step. */
  async publishParameters(): Promise<void> {
    for (const [j, [, p]] of this.trainable.entries())
      await copyTensorInto(p, this.parameterView, this.slots[j].offset);
    this.parameterVersion++;
  }

  /**
   * How many of a step's `microBatches` each replica computes, as contiguous shares in data order: the workers'
   * first (worker 1, 2, …; rounded up), this thread's last. Each worker can then start as soon as its share is
   * loaded, while this thread loads its own.
   */
  shares(microBatches: number): { workers: number[]; own: number } {
    const workers: number[] = [];
    let left = microBatches;
    for (let i = 0; i < this.workers.length; i++) {
      const share = Math.ceil(left / (this.size - i));
      workers.push(share);
      left -= share;
    }
    return { workers, own: left };
  }

  /** Sends worker `index` (0-based) its micro-batches for this step and disposes them; resolves to its result. */
  send(index: number, batches: MultimodalBatch[]): Promise<ReplicaStepResult> {
    const transfer: ArrayBuffer[] = [];
    const encoded = batches.map((b) => {
      const e = encodeBatch(b);
      transfer.push(...e.transfer);
      disposeMultimodalBatch(b);
      return e.encoded;
    });
    const result = this.workers[index].request(
      { type: 'step', batches: encoded, parameterVersion: this.parameterVersion },
      'result',
      transfer,
    );
    result.catch(() => undefined); // awaited by the caller unless this thread's own part failed first
    return result;
  }

  /**
   * Splits a step's micro-batches by `shares`, sends the workers theirs (disposing them) and returns this
   * thread's batches and the workers' results to await.
   */
  dispatch(batches: MultimodalBatch[]): { own: MultimodalBatch[]; results: Promise<ReplicaStepResult[]> } {
    const { workers } = this.shares(batches.length);
    let next = 0;
    const results = workers.map((share, i) => {
      const mine = batches.slice(next, next + share);
      next += share;
      return this.send(i, mine);
    });
    const all = Promise.all(results);
    all.catch(() => undefined);
    return { own: batches.slice(next), results: all };
  }

  /** Adds worker `index`'s Σ weight·gradient (from its shared buffer) to the accumulator. */
  addGradients(accumulator: GradientAccumulator, index: number, result: ReplicaStepResult): void {
    if (result.weightSum === 0) return;
    const view = this.gradientViews[index];
    const reached = new Set(result.gradientNames);
    const sums = new Map<string, tf.Tensor>();
    try {
      for (const slot of this.slots)
        if (reached.has(slot.name))
          sums.set(slot.name, tensorFromShared(view, slot.offset, slot.size, slot.shape));
      accumulator.addWeightedSum(sums, result.weightSum, result.microBatches);
    } finally {
      tf.dispose([...sums.values()]);
    }
  }

  /** Stops every worker (at the end of a run and on errors). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
