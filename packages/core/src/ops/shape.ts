// Reshape and same-shape add whose gradients keep nothing alive. tfjs's Reshape and Add gradients save their
// inputs only to read the shapes, which pins every reshaped or residual-added activation (each linear's output,
// each residual branch) in memory until the backward pass ends.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { permuteKernel } from './kernels/permute.js';
import { opPolicy } from './policy.js';

/** tf.reshape with a gradient that saves nothing (plain tf.reshape when no gradient is being recorded). */
export function reshape(x: tf.Tensor, shape: number[]): tf.Tensor {
  if (!tf.engine().isTapeOn()) return tf.reshape(x, shape);
  const inShape = x.shape;
  return customGrad(([t]: [tf.Tensor]) => ({
    value: tf.reshape(t, shape),
    gradFunc: (dy) => [tf.reshape(dy, inShape)],
  }))(x);
}

/** a + b for equal shapes (residual connections), with a gradient that saves nothing. */
export function addSameShape(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!tf.engine().isTapeOn() || !tf.util.arraysEqual(a.shape, b.shape)) return tf.add(a, b);
  return customGrad(([x, y]: [tf.Tensor, tf.Tensor]) => ({
    value: tf.add(x, y),
    // A clone for the second input: the engine may dispose one accumulated gradient while the other lives on.
    gradFunc: (dy) => [dy, tf.clone(dy)],
  }))(a, b);
}

/** Rows at least this long make the row-copying kernel worth its call (shorter ones stay on tf.transpose). */
const MIN_PERMUTE_ROW = 8;

/**
 * tf.transpose(x, perm). On wasm/cpu a permutation that keeps the last axis last runs as row copies (the
 * wasm kernel is ~60 ns per element at rank 6); its gradient is the inverse permutation.
 */
export function permute(x: tf.Tensor, perm: number[]): tf.Tensor {
  const rank = x.rank;
  const rowsKept = perm[rank - 1] === rank - 1 && (x.shape[rank - 1] ?? 0) >= MIN_PERMUTE_ROW;
  if (!rowsKept || rank < 3 || !opPolicy().jsKernels || (x.dtype !== 'float32' && x.dtype !== 'int32'))
    return tf.transpose(x, perm);
  const run = (t: tf.Tensor, order: number[]) =>
    runJsKernel(permuteKernel, { x: t }, { perm: order })[0] as tf.Tensor;
  if (!tf.engine().isTapeOn()) return run(x, perm);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return customGrad(([t]: [tf.Tensor]) => ({ value: run(t, perm), gradFunc: (dy) => [run(dy, inverse)] }))(x);
}
