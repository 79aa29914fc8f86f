// Matrix products. On wasm the forward and every gradient use explicit transposes + plain 2D matMuls,
// the only form that reaches XNNPACK (see policy.ts); elsewhere tfjs's own kernels and gradients are used.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { splitColumns, splitRows } from './kernels/split.js';
import { transposeLastTwoJs } from './kernels/transpose.js';
import { opPolicy } from './policy.js';
import { reshape } from './shape.js';
import { needsFreshTranspose, transposedWeight } from './weight-cache.js';

/** Swaps the last two axes (wasm/cpu: the op layer's tiled kernel, several times faster on big matrices). */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  if (opPolicy().jsKernels && x.rank >= 2 && (x.dtype === 'float32' || x.dtype === 'int32'))
    return transposeLastTwoJs(x);
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

function sameBatch(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.rank === b.rank && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
}

/** a·b for a [..., M, K], b [..., K, N] (already transposed), equal batch dims: 2D slices where XNNPACK pays. */
function batchedPlain(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [M, K] = a.shape.slice(-2) as [number, number];
  const N = b.shape[b.rank - 1];
  const batch = a.shape.slice(0, -2);
  const count = batch.reduce((x, y) => x * y, 1);
  if (count === 1)
    return tf.reshape(tf.matMul(tf.reshape(a, [M, K]), tf.reshape(b, [K, N])), [...batch, M, N]);
  if (M * K * N < opPolicy().perSliceMinWork) return tf.matMul(a, b);
  const as = tf.unstack(tf.reshape(a, [count, M, K]));
  const bs = tf.unstack(tf.reshape(b, [count, K, N]));
  return tf.reshape(tf.stack(as.map((ai, i) => tf.matMul(ai, bs[i]))), [...batch, M, N]);
}

/**
 * The product with the backend's preferred transposes and no gradient of its own (used by forwards and
 * gradients alike). Batch dims must match, or b may be 2D.
 */
export function rawMatmul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (!opPolicy().explicitTranspose) return tf.matMul(a, b, transposeA, transposeB);
  const A = transposeA ? transposeLast2(a) : a;
  const B = transposeB ? transposeLast2(b) : b;
  if (A.rank === 2 && B.rank === 2) return tf.matMul(A, B);
  if (B.rank === 2) {
    const [M, K] = A.shape.slice(-2) as [number, number];
    return tf.reshape(tf.matMul(tf.reshape(A, [-1, K]), B), [
      ...A.shape.slice(0, -2),
      M,
      B.shape[B.rank - 1],
    ]);
  }
  if (sameBatch(A, B)) return batchedPlain(A, B);
  return tf.matMul(A, B); // broadcast batch dims: tfjs's kernel
}

/** Gradient-carrying product for equal batch dims; tfjs's own gradient uses transpose flags, so it is replaced. */
const matmulSameBatch = (transposeA: boolean, transposeB: boolean) =>
  customGrad(([a, b]: [tf.Tensor, tf.Tensor], save) => {
    save([a, b]);
    return {
      value: rawMatmul(a, b, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved;
        if (!transposeA && !transposeB)
          return [rawMatmul(dy, sb, false, true), rawMatmul(sa, dy, true, false)];
        if (transposeA && !transposeB)
          return [rawMatmul(sb, dy, false, true), rawMatmul(sa, dy, false, false)];
        if (!transposeA && transposeB)
          return [rawMatmul(dy, sb, false, false), rawMatmul(dy, sa, true, false)];
        return [rawMatmul(sb, dy, true, true), rawMatmul(dy, sa, true, true)];
      },
    };
  });
const MATMUL = [
  [matmulSameBatch(false, false), matmulSameBatch(false, true)],
  [matmulSameBatch(true, false), matmulSameBatch(true, true)],
];

/** a @ b with optional transposes; a: [..., M, K], b: [..., K, N] (or b 2D: shared across a's batch). */
export function matmul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (b.rank === 2 && a.rank > 2) {
    // Fold a's batch into rows: one 2D product, and a 2D gradient for b (tfjs's own is wrong for a broadcast b).
    const A = transposeA ? transposeLast2(a) : a;
    const [M, K] = A.shape.slice(-2) as [number, number];
    const y = matmul(reshape(A, [-1, K]), b, false, transposeB);
    return reshape(y, [...A.shape.slice(0, -2), M, y.shape[y.rank - 1]]);
  }
  if (!opPolicy().explicitTranspose || !sameBatch(a, b)) return tf.matMul(a, b, transposeA, transposeB);
  return MATMUL[transposeA ? 1 : 0][transposeB ? 1 : 0](a, b);
}

/**
 * x [N, in] · Wᵀ for W [out, in] given Wᵀ, with gradients dx = dy·W and dW = dyᵀ·x (no transpose flags).
 * A fresh Wᵀ is freed right after the product: on wasm it also drops XNNPACK's packed copy of it, which would
 * otherwise hold a second and third copy of every trained weight until the step ends.
 */
const linearExplicit = (wT: tf.Tensor, freshWT: boolean) =>
  customGrad(([x, w]: [tf.Tensor, tf.Tensor], save) => {
    save([x, w]);
    const y = tf.matMul(x, wT);
    if (freshWT) wT.dispose();
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) => [
        tf.matMul(dy, sw),
        tf.matMul(transposeLast2(dy), sx),
      ],
    };
  });

/** Vocabulary blocks of the wide linear's dx = Σ dy[:, block]·W[block, :] (XNNPACK does not block K itself). */
const WIDE_BLOCK = 4096;

/**
 * x [N, in] · Wᵀ for a W [out, in] with out ≫ N (an LM head over a 50k vocabulary), trained. The product
 * is formed as (W·xᵀ)ᵀ: XNNPACK packs its right operand on every call, and xᵀ [in, N] is ~out/N times
 * smaller than Wᵀ, which also needs no transpose of the big weight (0.7 s on wasm for 49152 × 576). dx sums
 * products over blocks of the vocabulary, so the long K = out loop stays in cache.
 */
const linearWide = customGrad(([x, w]: [tf.Tensor, tf.Tensor], save) => {
  save([x, w]);
  const yT = tf.matMul(w, transposeLast2(x));
  return {
    value: transposeLast2(yT),
    gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) => {
      const dyBlocks = runJsKernel(splitColumns, { x: dy }, { size: WIDE_BLOCK });
      const wBlocks = runJsKernel(splitRows, { x: sw }, { size: WIDE_BLOCK });
      let dx = tf.matMul(dyBlocks[0], wBlocks[0]);
      for (let k = 1; k < dyBlocks.length; k++) {
        const next = tf.add(dx, tf.matMul(dyBlocks[k], wBlocks[k]));
        tf.dispose([dx, dyBlocks[k], wBlocks[k]]);
        dx = next;
      }
      return [dx, tf.matMul(transposeLast2(dy), sx)];
    },
  };
});

/** The wide form pays where out ≥ 4·N and the weight would otherwise be transposed for this call. */
function useWideLinear(x2d: tf.Tensor, weight: tf.Tensor2D): boolean {
  const policy = opPolicy();
  return (
    policy.wideLinear &&
    policy.jsKernels &&
    weight.shape[0] >= 4 * x2d.shape[0] &&
    weight.shape[0] > WIDE_BLOCK &&
    needsFreshTranspose(weight)
  );
}

/** y = x W^T + b with HF's [out, in] weight layout; x: [..., in] → [..., out]. */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const [outDim, inDim] = weight.shape;
  if (x.shape[x.rank - 1] !== inDim) {
    throw new Error(
      `linear: input last dim ${x.shape[x.rank - 1]} != weight in-features ${inDim} (weight [out, in] = [${weight.shape}])`,
    );
  }
  const x2d = reshape(x, [-1, inDim]);
  let y: tf.Tensor;
  if (useWideLinear(x2d, weight)) {
    y = linearWide(x2d, weight);
  } else if (opPolicy().explicitTranspose) {
    // Wᵀ is fetched out here: inside a customGrad forward the engine reports the tape as off
    const { transposed, fresh } = transposedWeight(weight);
    y = linearExplicit(transposed, fresh)(x2d, weight);
  } else {
    y = tf.matMul(x2d, weight, false, true);
  }
  return reshape(bias ? tf.add(y, bias) : y, [...x.shape.slice(0, -1), outDim]);
}
