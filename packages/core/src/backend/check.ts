// `vistune backends --check`: forward + backward of every op family a transformer / ViT training step
// uses, on the active backend, compared with the cpu backend as reference.
import * as tf from '@tensorflow/tfjs-core';
import {
  activation,
  attention,
  crossEntropy,
  embedding,
  layerNorm,
  linear,
  matmul,
  rmsNorm,
} from '../ops/index.js';
import { closeness, det } from '../ops/testing.js';
import { registerKernelShims } from './kernel-shims.js';
import type { OpCheckResult } from './types.js';

type Family = { inputs: () => tf.Tensor[]; f: (...xs: tf.Tensor[]) => tf.Tensor };

const ids = () => tf.tensor1d([3, 0, 3, 1, 6, 2], 'int32');

/** Each family: a scalar function of float inputs; the check runs it and its gradient with respect to every input. */
export const OP_FAMILIES: Record<string, Family> = {
  matmul: {
    inputs: () => [det([2, 5, 6], 1), det([2, 7, 6], 2)],
    f: (a, b) => matmul(matmul(a, b, false, true), a, true, false),
  },
  linear: {
    inputs: () => [det([2, 5, 6], 1), det([4, 6], 2), det([4], 3)],
    f: (x, w, b) => linear(x, w as tf.Tensor2D, b as tf.Tensor1D),
  },
  rmsNorm: { inputs: () => [det([3, 8], 1), det([8], 2)], f: (x, w) => rmsNorm(x, w as tf.Tensor1D, 1e-6) },
  layerNorm: {
    inputs: () => [det([3, 8], 1), det([8], 2), det([8], 3)],
    f: (x, w, b) => layerNorm(x, w as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
  },
  attention: {
    inputs: () => [det([2, 4, 5, 8], 1), det([2, 2, 5, 8], 2), det([2, 2, 5, 8], 3)],
    f: (q, k, v) => {
      const keyMask = tf.tensor2d(
        [
          [0, 1, 1, 1, 1],
          [1, 1, 1, 1, 1],
        ],
        [2, 5],
        'int32',
      );
      return attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, { causal: true, keyMask });
    },
  },
  crossEntropy: {
    inputs: () => [det([6, 9], 1)],
    f: (x) => crossEntropy(tf.mul(x, 4) as tf.Tensor2D, tf.tensor1d([1, -100, 8, 0, 4, 4], 'int32')),
  },
  embedding: { inputs: () => [det([7, 4], 1)], f: (t) => embedding(t as tf.Tensor2D, ids()) },
  activations: {
    inputs: () => [tf.mul(det([4, 6], 1), 3)],
    f: (x) =>
      tf.addN(['gelu', 'gelu_pytorch_tanh', 'quick_gelu', 'silu', 'relu'].map((n) => activation(n)(x))),
  },
  softmax: { inputs: () => [det([3, 7], 1)], f: (x) => tf.add(tf.softmax(tf.mul(x, 3)), tf.logSoftmax(x)) },
  gather: { inputs: () => [det([7, 4], 1)], f: (t) => tf.gather(t, ids()) },
  conv2d: {
    inputs: () => [det([2, 6, 6, 3], 1), det([2, 2, 3, 4], 2)],
    f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'), // ViT patch embedding shape
  },
  depthwiseConv2d: {
    inputs: () => [det([1, 5, 5, 3], 1), det([3, 3, 3, 1], 2)],
    f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'),
  },
  pooling: {
    inputs: () => [det([1, 4, 4, 3], 1)],
    f: (x) =>
      tf.add(tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid')),
  },
  resize: {
    inputs: () => [det([1, 3, 3, 2], 1)],
    f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [5, 5]),
  },
  concatSlice: {
    inputs: () => [det([3, 4], 1), det([3, 2], 2)],
    f: (a, b) =>
      tf.slice(
        tf.pad(tf.concat([a, b], 1), [
          [0, 0],
          [1, 1],
        ]),
        [1, 1],
        [2, 5],
      ),
  },
  where: {
    inputs: () => [det([3, 4], 1), det([3, 4], 2)],
    f: (a, b) => tf.where(tf.greater(a, b), tf.mul(a, 2), tf.square(b)),
  },
  transposeTile: {
    inputs: () => [det([2, 3, 4], 1)],
    f: (x) => tf.tile(tf.reshape(tf.transpose(x, [2, 0, 1]), [4, 6]), [2, 1]),
  },
  reductions: {
    inputs: () => [det([3, 5], 1)],
    f: (x) => tf.stack([tf.sum(x), tf.mean(x), tf.max(x), tf.min(x), tf.sum(tf.cumsum(x, 1))]),
  },
  elementwise: {
    inputs: () => [tf.add(tf.abs(det([3, 4], 1)), 0.5)],
    f: (x) =>
      tf.addN([
        tf.exp(x),
        tf.log(x),
        tf.sqrt(x),
        tf.rsqrt(x),
        tf.pow(x, 3),
        tf.tanh(x),
        tf.sigmoid(x),
        tf.erf(x),
        tf.div(1, x),
      ]),
  },
};

/** Forward output then the gradient of Σ(output · weights) with respect to each input, as arrays. */
function runFamily(family: Family): Float32Array[] {
  const inputs = tf.tidy(() => family.inputs());
  try {
    const y = tf.tidy(() => family.f(...inputs));
    const grads = tf.grads(
      (...xs: tf.Tensor[]) => tf.sum(tf.mul(family.f(...xs), det(y.shape, 7))) as tf.Scalar,
    )(inputs);
    const out = [y, ...grads].map((t) => t.dataSync().slice() as Float32Array);
    tf.dispose([y, ...grads]);
    return out;
  } finally {
    tf.dispose(inputs);
  }
}

export interface CheckBackendOptions {
  /** Only these families (default: all of OP_FAMILIES). */
  families?: string[];
  /** Compare with the cpu backend (default true; ignored when cpu is the active backend). */
  compareWithCpu?: boolean;
  /** Largest accepted |backend − cpu| relative to the reference's scale (default 1e-3). */
  tolerance?: number;
}

/** Runs every op family forward and backward on the active backend; reports ok or the error per family. */
export async function checkBackend(opts: CheckBackendOptions = {}): Promise<OpCheckResult[]> {
  const backend = tf.getBackend();
  const names = opts.families ?? Object.keys(OP_FAMILIES);
  const unknown = names.filter((n) => !(n in OP_FAMILIES));
  if (unknown.length)
    throw new Error(
      `checkBackend: unknown families ${unknown.join(', ')}; known: ${Object.keys(OP_FAMILIES).join(', ')}`,
    );
  const results: OpCheckResult[] = [];
  const outputs = new Map<string, Float32Array[]>();
  for (const name of names) {
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    try {
      outputs.set(name, runFamily(OP_FAMILIES[name]));
      const leaked = tf.memory().numTensors - before;
      results.push(
        leaked > 0
          ? { family: name, ok: false, error: `leaked ${leaked} tensors`, ms: performance.now() - t0 }
          : { family: name, ok: true, ms: performance.now() - t0 },
      );
    } catch (e) {
      results.push({
        family: name,
        ok: false,
        error: e instanceof Error ? e.message : String(e),
        ms: performance.now() - t0,
      });
    }
  }
  if ((opts.compareWithCpu ?? true) && backend !== 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    registerKernelShims('cpu');
    await tf.setBackend('cpu');
    try {
      for (const r of results) {
        const got = outputs.get(r.family);
        if (!got) continue;
        const want = runFamily(OP_FAMILIES[r.family]);
        // closeness with atol≈0: the largest error relative to the reference's largest magnitude
        r.maxRelDiffVsCpu = Math.max(...want.map((w, i) => closeness(got[i], w, 1, 1e-12)));
        if (r.ok && r.maxRelDiffVsCpu > (opts.tolerance ?? 1e-3)) {
          r.ok = false;
          r.error = `differs from cpu by ${r.maxRelDiffVsCpu.toExponential(2)} (relative)`;
        }
      }
    } finally {
      await tf.setBackend(backend);
    }
  }
  return results;
}
