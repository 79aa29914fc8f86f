// Test helpers of the connectors: deterministic values, random-but-O(1) weights (so every term shows) and a
// gradient check of every parameter against central finite differences (float32: h = 1e-2 on O(1) losses).
import { type Module, tf } from '@vistune/core';
import { expect } from 'vitest';

/** Deterministic values in about [-1, 1]. */
export function det(shape: number[], seed = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9),
    shape,
  );
}

/** Overwrites every parameter with deterministic values of about ±scale (zero-initialised gates included). */
export function randomizeParameters(m: Module, seed: number, scale = 0.3): void {
  m.namedParameters().forEach(([, v], i) => {
    tf.tidy(() => v.assign(tf.mul(det(v.shape, seed + i), scale) as tf.Tensor));
  });
}

/** Largest |a − b| / max|b|. */
export function relativeError(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
): number {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const b = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (a.length !== b.length) throw new Error(`relativeError: ${a.length} values vs ${b.length}`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / Math.max(scale, 1e-30);
}

/**
 * Checks d loss / d p of every trainable parameter of `m` (or those named) at `perParam` flat indices against
 * central differences; also that every gradient exists and is finite.
 */
export function expectGradientsMatchFiniteDifferences(
  m: Module,
  loss: () => tf.Scalar,
  opts: { names?: readonly string[]; perParam?: number; h?: number; tolerance?: number } = {},
): void {
  const h = opts.h ?? 1e-2;
  const params = m.trainableParameters().filter(([n]) => !opts.names || opts.names.includes(n));
  expect(params.length).toBeGreaterThan(0);
  const { value, grads } = tf.variableGrads(
    loss,
    params.map(([, v]) => v),
  );
  value.dispose();
  for (const [name, v] of params) {
    const g = grads[v.name];
    expect(g, `no gradient for ${name}`).toBeDefined();
    const analytic = g.dataSync();
    const base = v.dataSync().slice();
    const picks = Array.from({ length: Math.min(opts.perParam ?? 2, v.size) }, (_, k) =>
      Math.floor(((k + 0.5) * v.size) / Math.min(opts.perParam ?? 2, v.size)),
    );
    for (const i of picks) {
      const at = (delta: number) => {
        const shifted = base.slice();
        shifted[i] += delta;
        tf.tidy(() => v.assign(tf.tensor(shifted, v.shape)));
        const l = loss();
        const out = l.dataSync()[0];
        l.dispose();
        return out;
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
      const tol = (opts.tolerance ?? 3e-2) * Math.max(1, Math.abs(numeric));
      expect(
        Math.abs(numeric - analytic[i]),
        `${name}[${i}]: numeric ${numeric}, analytic ${analytic[i]}`,
      ).toBeLessThan(tol);
    }
  }
  tf.dispose(Object.values(grads));
}
