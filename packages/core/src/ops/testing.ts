// Test helpers for the op layer: deterministic inputs and central finite differences (float32).
import * as tf from '@tensorflow/tfjs-core';

/** Deterministic values in about [-1, 1] (no RNG state shared between tests). */
export function det(shape: number[], seed = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9),
    shape,
  );
}

/**
 * Central differences of f (scalar) with respect to each input, element by element: (f(x+h) − f(x−h)) / 2h.
 * float32 loses ~7 digits, so h is large (1e-2) and f should be O(1); errors of a wrong gradient are O(value).
 */
export function numericGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  h = 1e-2,
): Float32Array[] {
  const values = inputs.map((x) => x.dataSync().slice() as Float32Array);
  const evalAt = (which: number, idx: number, delta: number) =>
    tf.tidy(() => {
      const shifted = values.map((v, j) => {
        if (j !== which) return inputs[j];
        const c = v.slice();
        c[idx] += delta;
        return tf.tensor(c, inputs[j].shape);
      });
      return f(...shifted).dataSync()[0];
    });
  return values.map((v, which) =>
    Float32Array.from(v, (_, idx) => (evalAt(which, idx, h) - evalAt(which, idx, -h)) / (2 * h)),
  );
}

/** Largest |a − b| / (atol + rtol·max|b|) — ≤ 1 passes. */
export function closeness(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 2e-2,
  atol = 2e-3,
): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = 0;
  for (let i = 0; i < actual.length; i++)
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (atol + rtol * scale));
  return worst;
}

/** Analytic gradients of f's scalar output with respect to every input. */
export function analyticGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): Float32Array[] {
  const grads = tf.grads((...xs: tf.Tensor[]) => f(...xs) as tf.Scalar)(inputs);
  const out = grads.map((g) => g.dataSync().slice() as Float32Array);
  tf.dispose(grads);
  return out;
}

/** Reduces any output to a scalar that weighs every element differently (so a permuted gradient fails). */
export function weighted(y: tf.Tensor, seed = 7): tf.Scalar {
  return tf.sum(tf.mul(y, det(y.shape, seed)));
}
