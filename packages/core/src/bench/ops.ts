// `vistune bench ops`: matmul throughput, attention fwd+bwd and a toy transformer train step per backend,
// each with the op layer and with plain tfjs ops (the naive baseline), so the report shows the speedup.
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend } from '../backend/init.js';
import type { BackendName } from '../backend/types.js';
import { attention, matmul } from '../ops/index.js';
import { naiveAttention } from './naive.js';
import { timeInterleaved, timeIt } from './timing.js';
import { createToyModel, NAIVE_OPS, OP_LAYER, type OpSet, type ToyConfig, toyBatch } from './toy-model.js';

export interface OpsBenchOptions {
  /** Backends to measure (default: every one that initialises here). */
  backends?: BackendName[];
  /** Smaller sizes and fewer repetitions (seconds instead of minutes; cpu is ~30× slower than wasm). */
  quick?: boolean;
  /** Called before each measurement, e.g. to print progress. */
  onProgress?: (message: string) => void;
}

export interface ComparedTiming {
  /** Median milliseconds with the op layer, and with plain tfjs ops. */
  opLayerMs: number;
  naiveMs: number;
  /** naiveMs / opLayerMs. */
  speedup: number;
}

export interface BackendOpsBench {
  backend: BackendName;
  detail: string;
  /** Square n×n×n products: op layer (plain) and tfjs with transposeB=true (what HF-layout weights invite). */
  matmul: { n: number; ms: number; gflops: number; transposeFlagGflops: number }[];
  attention: { shape: { B: number; H: number; T: number; D: number } } & ComparedTiming;
  trainStep: {
    config: ToyConfig;
    parameters: number;
    opLayerTokensPerSec: number;
    naiveTokensPerSec: number;
  } & ComparedTiming;
}

export interface OpsBenchReport {
  quick: boolean;
  results: BackendOpsBench[];
  skipped: { backend: BackendName; reason: string }[];
}

const ALL_BACKENDS: BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

function benchMatmul(n: number, reps: number): BackendOpsBench['matmul'][number] {
  const [a, b] = [tf.randomNormal([n, n], 0, 1, 'float32', 1), tf.randomNormal([n, n], 0, 1, 'float32', 2)];
  const flops = 2 * n ** 3;
  const plain = timeIt(() => matmul(a, b), reps);
  const flagged = timeIt(() => tf.matMul(a, b, false, true), Math.max(1, Math.ceil(reps / 3)));
  tf.dispose([a, b]);
  return {
    n,
    ms: plain.medianMs,
    gflops: flops / plain.medianMs / 1e6,
    transposeFlagGflops: flops / flagged.medianMs / 1e6,
  };
}

function benchAttention(
  shape: { B: number; H: number; T: number; D: number },
  reps: number,
): BackendOpsBench['attention'] {
  const { B, H, T, D } = shape;
  const [q, k, v] = [1, 2, 3].map(
    (seed) => tf.randomNormal([B, H, T, D], 0, 1, 'float32', seed) as tf.Tensor4D,
  );
  const fwdBwd = (att: OpSet['attention']) => () =>
    tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
      tf.sum(att(x as tf.Tensor4D, y as tf.Tensor4D, z as tf.Tensor4D, { causal: true })),
    )([q, k, v]);
  const [opLayerMs, naiveMs] = timeInterleaved([fwdBwd(attention), fwdBwd(naiveAttention)], reps).map(
    (t) => t.medianMs,
  );
  tf.dispose([q, k, v]);
  return { shape, opLayerMs, naiveMs, speedup: naiveMs / opLayerMs };
}

function benchTrainStep(config: ToyConfig, reps: number): BackendOpsBench['trainStep'] {
  const model = createToyModel(config);
  const ids = toyBatch(config);
  const optimizers = [tf.train.adam(1e-3), tf.train.adam(1e-3)];
  const step = (ops: OpSet, optimizer: tf.Optimizer) => () =>
    optimizer.minimize(() => model.loss(ops, ids), true, model.params) ?? [];
  const [opLayerMs, naiveMs] = timeInterleaved(
    [step(OP_LAYER, optimizers[0]), step(NAIVE_OPS, optimizers[1])],
    reps,
  ).map((t) => t.medianMs);
  for (const o of optimizers) o.dispose();
  const tokens = config.batch * config.seqLen;
  const parameters = model.params.reduce((n, p) => n + p.size, 0);
  model.dispose();
  ids.dispose();
  return {
    config,
    parameters,
    opLayerMs,
    naiveMs,
    speedup: naiveMs / opLayerMs,
    opLayerTokensPerSec: (tokens * 1000) / opLayerMs,
    naiveTokensPerSec: (tokens * 1000) / naiveMs,
  };
}

/** Measures each available backend in turn (tf.setBackend), then restores the backend that was active. */
export async function benchOps(opts: OpsBenchOptions = {}): Promise<OpsBenchReport> {
  const quick = opts.quick ?? false;
  const progress = opts.onProgress ?? (() => undefined);
  const previous = currentBackend()?.name ?? (tf.getBackend() as BackendName | null);
  const report: OpsBenchReport = { quick, results: [], skipped: [] };
  for (const backend of opts.backends ?? ALL_BACKENDS) {
    let detail: string;
    try {
      detail = (await initBackend({ backend })).detail;
    } catch (e) {
      report.skipped.push({ backend, reason: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const slow = backend === 'cpu';
    const reps = quick || slow ? 3 : 7;
    const sizes = quick || slow ? [256, 512] : [256, 512, 1024];
    const matmulRows = sizes.map((n) => {
      progress(`${backend}: matmul ${n}³`);
      return benchMatmul(n, reps);
    });
    const attentionShape = quick ? { B: 2, H: 4, T: 64, D: 64 } : { B: 4, H: 4, T: 128, D: 64 };
    progress(`${backend}: attention fwd+bwd ${JSON.stringify(attentionShape)}`);
    const attentionRow = benchAttention(attentionShape, reps);
    const config: ToyConfig = quick
      ? { vocab: 512, dim: 64, layers: 2, heads: 4, seqLen: 32, batch: 2 }
      : { vocab: 2048, dim: 128, layers: 2, heads: 4, seqLen: 64, batch: 4 };
    progress(`${backend}: toy transformer train step ${JSON.stringify(config)}`);
    const trainStep = benchTrainStep(config, reps);
    report.results.push({ backend, detail, matmul: matmulRows, attention: attentionRow, trainStep });
  }
  if (previous != null) await initBackend({ backend: previous });
  return report;
}
