// `vistune bench --config`: the LLaVA train step and greedy generation that shared/bench/torch_ref.py times,
// on a randomly initialised model built from the same HF LlavaConfig JSON, reported in the same JSON shape.
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend } from '../backend/init.js';
import { disposeMultimodalBatch } from '../data/loader.js';
import { generateStream } from '../generation/generate.js';
import { createLlava, type LlavaForConditionalGeneration } from '../multimodal/llava.js';
import type { MultimodalBatch } from '../multimodal/model.js';
import { Rng } from '../nn/rng.js';
import { wasmThreads } from '../ops/wasm-threads.js';
import { GradientAccumulator } from '../optim/accumulate.js';
import { AdamW } from '../optim/adamw.js';
import { computeGradientsAsync } from '../optim/gradients.js';
import type { Registry } from '../registry/types.js';
import { ReplicaGroup, type ReplicaSpec } from '../train/parallel.js';
import { parseRecipe } from '../train/recipe.js';
import { supervisedTokens } from '../train/stage.js';

/** The config's `"bench"` object (torch_ref.py's names). */
export interface LlavaBenchSizes {
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  gen_prompt?: number;
  gen_new?: number;
  gen_runs?: number;
}

export interface LlavaBenchOptions {
  /** Overrides the config's "bench" object. */
  sizes?: LlavaBenchSizes;
  /** Name reported as `config` (torch_ref.py: the file name without extension). */
  name?: string;
  /** Threads asked for (the caller sets the backend up, e.g. useWasmThreads); the report says how many ran. */
  threads?: number;
  skipTrain?: boolean;
  skipGenerate?: boolean;
  /** Seed of the weights (model) and of the batch (seed + 1), as torch_ref.py. Default 0. */
  seed?: number;
  /**
   * Data-parallel replicas of the train step (this thread and workers − 1 worker_threads, each computing
   * batch / workers rows; train/parallel.ts). Default 1. Needs `replica`.
   */
  workers?: number;
  /** How a worker builds the same model: an export called with `{ config, seed }` that returns createLlava's model. */
  replica?: ReplicaSpec;
  /** Generation's LM head in int8 rows (quantizeLmHead) instead of float32; training always runs float32. */
  lmHead?: 'float32' | 'int8';
  onProgress?: (message: string) => void;
}

export interface LlavaTrainReport {
  /** Model replicas that computed each step (1: this thread alone). */
  workers: number;
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
  median_ms_per_step: number;
  min_ms_per_step: number;
  tokens_per_s: number;
  loss_first: number;
  loss_last: number;
  trainable_params: number;
}

export interface LlavaGenerateReport {
  prompt_tokens: number;
  image_tokens: number;
  new_tokens: number;
  runs: number;
  prefill_ms: number;
  decode_tokens_per_s: number;
  /** The LM head's weights during generation (int8: weight-only rows, LlavaBenchOptions.lmHead). */
  lm_head: 'float32' | 'int8';
}

/** torch_ref.py's output with `torch`/`blas` replaced by `backend` and its detail. */
export interface LlavaBenchReport {
  bench: 'llava-vistune';
  config: string;
  backend: string;
  backend_detail: string;
  threads: number;
  threads_requested: number;
  dtype: 'float32';
  params_total: number;
  params_vision: number;
  generate?: LlavaGenerateReport;
  peak_rss_mb_after_generate?: number;
  train?: LlavaTrainReport;
  peak_rss_mb: number;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; // statistics.median
}

/** ru_maxrss of the process (worker threads included), in MB as torch_ref.py reports it. */
function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

interface BenchBatch {
  ids: Int32Array;
  labels: Int32Array;
  pixels: tf.Tensor3D[];
}

/** torch_ref.py's make_batch: BOS, N image placeholders, random text ids in [3, min(V, 32000)). */
function makeBatch(model: LlavaForConditionalGeneration, B: number, T: number, rng: Rng): BenchBatch {
  const V = model.llm.config.vocabSize;
  const N = model.imageSeqLength;
  const imageToken = model.config.imageTokenId;
  if (T < N + 2)
    throw new Error(`bench: seq ${T} is too short for ${N} image tokens: raise "seq" to ≥ ${N + 2}`);
  const ids = new Int32Array(B * T);
  const labels = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const t = i % T;
    let id = t === 0 ? 1 : t <= N ? imageToken : 3 + Math.floor(rng.nextFloat() * (Math.min(V, 32000) - 3));
    if (t > N && id === imageToken) id = 3;
    ids[i] = id;
    labels[i] = id === imageToken ? -100 : id;
  }
  const vision = model.config.vision as { num_channels?: number; image_size?: number };
  const size = vision.image_size ?? 224;
  const pixels = Array.from({ length: B }, () =>
    tf.tensor3d(rng.normal((vision.num_channels ?? 3) * size * size), [vision.num_channels ?? 3, size, size]),
  );
  return { ids, labels, pixels };
}

/** What benchLlava hands a replica export: the model is createLlava(config, registry, { seed }). */
export interface LlavaBenchReplicaOptions {
  config: Record<string, unknown>;
  seed: number;
}

/** Trainable parameters: all but the vision tower (frozen, as torch_ref.py). */
const BENCH_TRAINED = ['llm.*', 'modalities.image.adapter.*'];

/** Splits a batch into `parts` micro-batches of equal rows (fresh tensors: replicas dispose what they get). */
function splitRows(
  ids: tf.Tensor2D,
  labels: tf.Tensor2D,
  pixels: readonly tf.Tensor3D[],
  parts: number,
): MultimodalBatch[] {
  const rows = ids.shape[0] / parts;
  return Array.from({ length: parts }, (_, i) => ({
    inputIds: tf.slice(ids, [i * rows, 0], [rows, -1]),
    labels: tf.slice(labels, [i * rows, 0], [rows, -1]),
    media: { image: pixels.slice(i * rows, (i + 1) * rows).map((p) => [tf.clone(p)]) },
  }));
}

/**
 * One step's forward and backward on every replica: this thread computes micro-batch 0, the workers the
 * others; returns the batch's mean loss and gradients (weighted by supervised tokens, as the Trainer does).
 */
async function replicatedGradients(
  model: LlavaForConditionalGeneration,
  group: ReplicaGroup,
  batches: MultimodalBatch[],
  params: [string, tf.Variable][],
): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const accumulator = new GradientAccumulator();
  try {
    const { own, results } = group.dispatch(batches);
    let lossSum = 0;
    let weightSum = 0;
    for (const batch of own) {
      try {
        const weight = supervisedTokens(batch) ?? 1;
        const { loss, grads } = await computeGradientsAsync(
          () => model.forward(batch, { logits: false }).loss as tf.Scalar,
          params,
        );
        accumulator.add(grads, weight);
        tf.dispose([...grads.values()]);
        lossSum += loss * weight;
        weightSum += weight;
      } finally {
        disposeMultimodalBatch(batch);
      }
    }
    for (const [i, result] of (await results).entries()) {
      if (result.nonFiniteLoss !== null)
        throw new Error(`bench: worker ${i + 1} got a non-finite loss (${result.nonFiniteLoss})`);
      group.addGradients(accumulator, i, result);
      lossSum += result.lossSum;
      weightSum += result.weightSum;
    }
    return { loss: lossSum / weightSum, grads: accumulator.mean() };
  } finally {
    accumulator.dispose();
  }
}

async function benchTrain(
  model: LlavaForConditionalGeneration,
  sizes: LlavaBenchSizes,
  rng: Rng,
  progress: (m: string) => void,
  parallel: { workers: number; replica?: ReplicaSpec; seed: number },
): Promise<LlavaTrainReport> {
  const { batch: B, seq: T } = sizes;
  const { workers } = parallel;
  if (workers > 1 && B % workers !== 0)
    throw new Error(
      `bench: --workers ${workers} splits each step's batch of ${B} rows evenly: use a number of workers that divides ${B}, or set "bench.batch"`,
    );
  if (workers > 1 && !['wasm', 'cpu'].includes(tf.getBackend()))
    throw new Error(
      `bench: --workers ${workers} runs replicas on the wasm or cpu backend, this run uses ${tf.getBackend()}: use --backend wasm or --workers 1`,
    );
  if (workers > 1 && !parallel.replica)
    throw new Error('bench: workers > 1 needs a replica (how a worker thread builds the model)');
  model.train();
  model.trainOnly(BENCH_TRAINED);
  const params = model.namedParameters().filter(([, p]) => p.trainable);
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const data = makeBatch(model, B, T, rng);
  const inputIds = tf.tensor2d(data.ids, [B, T], 'int32');
  const labels = tf.tensor2d(data.labels, [B, T], 'int32');
  const media = { image: data.pixels.map((p) => [p]) };
  const times: number[] = [];
  const losses: number[] = [];
  let group: ReplicaGroup | null = null;
  try {
    if (workers > 1 && parallel.replica) {
      progress(`starting ${workers - 1} worker replica(s)`);
      group = await ReplicaGroup.start(parallel.replica, workers, tf.getBackend(), model);
      const stage = parseRecipe(
        {
          model: 'bench',
          data: { train: 'bench', batchSize: B / workers },
          stages: [{ name: 'bench', train: BENCH_TRAINED, lr: 1e-4, steps: sizes.steps }],
          output: 'bench',
        },
        { source: 'bench' },
      ).stages[0];
      await group.syncStage(model, stage, 'bench', parallel.seed);
    }
    for (let step = 0; step < sizes.warmup + sizes.steps; step++) {
      progress(
        `train step ${step + 1}/${sizes.warmup + sizes.steps}${step < sizes.warmup ? ' (warm-up)' : ''}`,
      );
      const t0 = performance.now();
      // The awaited loss ends the step's forward and backward; the update queued after it finishes inside the
      // next step's read (on webgpu), so the median counts every kernel once.
      const { loss, grads } = group
        ? await replicatedGradients(model, group, splitRows(inputIds, labels, data.pixels, workers), params)
        : await computeGradientsAsync(
            () => model.forward({ inputIds, labels, media }, { logits: false }).loss as tf.Scalar,
            params,
          );
      optimizer.step(grads);
      tf.dispose([...grads.values()]);
      // Workers read the updated parameters before their next micro-batch.
      await group?.publishParameters();
      const dt = performance.now() - t0;
      losses.push(loss);
      if (step >= sizes.warmup) times.push(dt);
    }
  } finally {
    await group?.close();
    optimizer.dispose();
    tf.dispose([inputIds, labels, ...data.pixels]);
  }
  model.eval();
  const med = median(times);
  return {
    workers,
    batch: B,
    seq: T,
    warmup: sizes.warmup,
    steps: sizes.steps,
    median_ms_per_step: round(med, 2),
    min_ms_per_step: round(Math.min(...times), 2),
    tokens_per_s: round((B * T * 1000) / med, 1),
    loss_first: round(losses[0], 4),
    loss_last: round(losses[losses.length - 1], 4),
    trainable_params: params.reduce((n, [, p]) => n + p.size, 0),
  };
}

async function benchGenerate(
  model: LlavaForConditionalGeneration,
  sizes: LlavaBenchSizes,
  rng: Rng,
  progress: (m: string) => void,
  lmHead: 'float32' | 'int8',
): Promise<LlavaGenerateReport> {
  if (lmHead === 'int8') {
    if (!model.llm.quantizeLmHead)
      throw new Error('bench: this LLM has no int8 LM head (quantizeLmHead): drop --lm-head int8');
    model.llm.quantizeLmHead('int8');
  }
  try {
    return await timeGeneration(model, sizes, rng, progress, lmHead);
  } finally {
    if (lmHead === 'int8') model.llm.quantizeLmHead?.(null);
  }
}

async function timeGeneration(
  model: LlavaForConditionalGeneration,
  sizes: LlavaBenchSizes,
  rng: Rng,
  progress: (m: string) => void,
  lmHead: 'float32' | 'int8',
): Promise<LlavaGenerateReport> {
  const nPrompt = sizes.gen_prompt ?? 32;
  const nNew = sizes.gen_new ?? 64;
  const runs = sizes.gen_runs ?? 3;
  model.eval();
  const N = model.imageSeqLength;
  const data = makeBatch(model, 1, 1 + N + nPrompt, rng);
  const inputIds = tf.tensor2d(data.ids, [1, data.ids.length], 'int32');
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r <= runs; r++) {
    progress(`generate run ${r + 1}/${runs + 1}${r === 0 ? ' (warm-up)' : ''}`);
    const t0 = performance.now();
    // Prefill = vision tower + projector + splice + the prompt's forward + the first token (torch_ref.py's t1).
    const { inputsEmbeds, attentionMask } = model.prepareGeneration(inputIds, { image: [[data.pixels[0]]] });
    const stream = generateStream(
      model.llm,
      { inputsEmbeds, attentionMask, promptIds: [Array.from(data.ids)] },
      { maxNewTokens: nNew + 1 },
    );
    let t1 = 0;
    let produced = 0;
    for await (const _token of stream) {
      if (produced++ === 0) {
        t1 = performance.now();
        tf.dispose([inputsEmbeds, attentionMask]);
      }
    }
    const t2 = performance.now();
    if (produced !== nNew + 1)
      throw new Error(`bench: generate produced ${produced} tokens, expected ${nNew + 1}`);
    if (r > 0) {
      prefill.push(t1 - t0);
      decode.push(t2 - t1);
    }
  }
  tf.dispose([inputIds, ...data.pixels]);
  return {
    prompt_tokens: data.ids.length,
    image_tokens: N,
    new_tokens: nNew,
    runs,
    prefill_ms: round(median(prefill), 2),
    decode_tokens_per_s: round((nNew * 1000) / median(decode), 1),
    lm_head: lmHead,
  };
}

/** Threads the active backend computes with (wasm: XNNPACK's pool, see useWasmThreads; cpu: one). */
function backendThreads(requested: number): number {
  const name = tf.getBackend();
  if (name === 'wasm') return wasmThreads();
  if (name === 'cpu') return 1;
  return requested;
}

/**
 * Builds the config's LLaVA (createLlava with the given registry, which supplies the vision tower and
 * projector) and times what torch_ref.py times: generation first, then training (which dominates peak RSS).
 */
export async function benchLlava(
  configJson: Record<string, unknown>,
  registry: Registry,
  opts: LlavaBenchOptions = {},
): Promise<LlavaBenchReport> {
  const sizes = opts.sizes ?? (configJson.bench as LlavaBenchSizes | undefined);
  if (!sizes || ![sizes.batch, sizes.seq, sizes.steps, sizes.warmup].every(Number.isInteger)) {
    throw new Error(
      'bench: the config has no "bench" object {batch, seq, steps, warmup, gen_prompt, gen_new, gen_runs}: add one or pass sizes',
    );
  }
  const seed = opts.seed ?? 0;
  const progress = opts.onProgress ?? (() => undefined);
  progress('building the model');
  const model = await createLlava(configJson, registry, { seed });
  try {
    const params = model.namedParameters();
    const requested = opts.threads ?? 1;
    const report: LlavaBenchReport = {
      bench: 'llava-vistune',
      config: opts.name ?? 'config',
      backend: tf.getBackend(),
      backend_detail: currentBackend()?.detail ?? tf.getBackend(),
      threads: backendThreads(requested),
      threads_requested: requested,
      dtype: 'float32',
      params_total: params.reduce((n, [, p]) => n + p.size, 0),
      params_vision: params
        .filter(([name]) => name.startsWith('modalities.image.encoder.'))
        .reduce((n, [, p]) => n + p.size, 0),
      peak_rss_mb: 0,
    };
    const rng = new Rng(seed + 1);
    if (!opts.skipGenerate) {
      report.generate = await benchGenerate(model, sizes, rng, progress, opts.lmHead ?? 'float32');
      report.peak_rss_mb_after_generate = peakRssMb();
    }
    if (!opts.skipTrain)
      report.train = await benchTrain(model, sizes, rng, progress, {
        workers: opts.workers ?? 1,
        replica: opts.replica,
        seed,
      });
    report.peak_rss_mb = peakRssMb();
    return report;
  } finally {
    model.dispose();
  }
}
