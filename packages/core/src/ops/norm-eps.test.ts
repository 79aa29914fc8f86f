// RMSNorm's eps sits inside the square root, y = x / sqrt(mean(x²) + eps) · w, as LLaMA's: checked in value and
// gradient against a float64 reference where eps is large next to mean(x²) (tiny inputs, or eps = 1), so
// eps outside the root, added to the root, or dropped would be far off.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { rmsNorm } from './norm.js';

/** float64 RMSNorm of each row of x ([rows, D]). */
function reference(x: number[][], w: number[], eps: number): number[][] {
  return x.map((row) => {
    const meanSquare = row.reduce((s, v) => s + v * v, 0) / row.length;
    const r = 1 / Math.sqrt(meanSquare + eps);
    return row.map((v, i) => v * r * w[i]);
  });
}

/** d(Σ y·c)/dx by central differences of the float64 reference. */
function referenceGrad(x: number[][], w: number[], eps: number, c: number[][]): number[][] {
  const loss = (xs: number[][]) =>
    reference(xs, w, eps).reduce((s, row, i) => s + row.reduce((t, v, j) => t + v * c[i][j], 0), 0);
  const h = 1e-6 * Math.max(...x.flat().map(Math.abs));
  return x.map((row, i) =>
    row.map((_, j) => {
      const up = x.map((r) => [...r]);
      const down = x.map((r) => [...r]);
      up[i][j] += h;
      down[i][j] -= h;
      return (loss(up) - loss(down)) / (2 * h);
    }),
  );
}

function maxRelDiff(got: number[][], want: number[][]): number {
  let worst = 0;
  got.forEach((row, i) => {
    row.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - want[i][j]) / Math.max(1e-30, Math.abs(want[i][j])));
    });
  });
  return worst;
}

const cases: [string, number[][], number][] = [
  [
    'tiny inputs, eps 1e-6',
    [
      [1e-4, -2e-4, 3e-4, 5e-5],
      [-7e-4, 1e-4, 2e-4, -1e-4],
    ],
    1e-6,
  ],
  [
    'unit inputs, eps 1',
    [
      [0.1, -0.2, 0.3, 0.05],
      [0.7, -0.1, 0.2, 0.1],
    ],
    1,
  ],
];
const weight = [1.5, -0.5, 2, 0.25];

describe.each(['cpu', 'wasm'] as const)('rmsNorm eps placement on %s', (backend) => {
  it.each(cases)(
    '%s: value and gradient match float64 (eps inside the square root)',
    async (_what, x, eps) => {
      await initBackend({ backend, native: false });
      const xt = tf.tensor2d(x);
      const wt = tf.tensor1d(weight);
      const y = rmsNorm(xt, wt, eps);
      const want = reference(x, weight, eps);
      expect(maxRelDiff(y.arraySync() as number[][], want)).toBeLessThan(1e-5);
      // What eps outside the root would give is far from it: the check can tell the placements apart.
      const outside = x.map((row) => {
        const rms = Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length);
        return row.map((v, i) => (v / (rms + eps)) * weight[i]);
      });
      expect(maxRelDiff(outside, want)).toBeGreaterThan(0.05);

      const c = x.map((row, i) => row.map((_, j) => (i + 1) * (j - 1.5)));
      const ct = tf.tensor2d(c);
      const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(rmsNorm(v, wt, eps), ct)))(xt);
      expect(maxRelDiff(dx.arraySync() as number[][], referenceGrad(x, weight, eps, c))).toBeLessThan(1e-3);
      tf.dispose([xt, wt, y, ct, dx]);
    },
  );
});
