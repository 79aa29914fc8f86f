// Resampling: PyTorch's bilinear weights (hand-computed), masks mapped back through pad/resize/crop
// transforms to the original frame, and the gradient of the two-matmul resample.
import { initBackend, tf } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  interpolationMatrix,
  resampleSeparable,
  resizeBilinear,
  resizeCoords,
  toOriginalFrame,
} from './resample.js';
import { closeness, det } from './test-utils.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** rows [out, in] applied to a 1-D signal. */
function apply(weights: Float32Array, signal: number[]): number[] {
  const n = signal.length;
  return Array.from({ length: weights.length / n }, (_, i) =>
    signal.reduce((s, v, j) => s + (weights[i * n + j] as number) * v, 0),
  );
}

describe('interpolation weights', () => {
  it('match F.interpolate(bilinear, align_corners=False) on hand-computed cases', () => {
    // Upsampling 4 → 8: sources −0.25 (clamped to 0), 0.25, 0.75, …, 3.25 (clamped to 3).
    const up = apply(interpolationMatrix(resizeCoords(8, 4), 4), [0, 1, 2, 3]);
    [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3].forEach((v, i) => {
      expect(up[i]).toBeCloseTo(v, 6);
    });
    // Downsampling 4 → 2 samples the centres 0.5 and 2.5.
    const down = apply(interpolationMatrix(resizeCoords(2, 4), 4), [0, 10, 20, 40]);
    expect(down[0]).toBeCloseTo(5, 6);
    expect(down[1]).toBeCloseTo(30, 6);
  });

  it('resizeBilinear of a [1, 2, 2, 1] map equals the separable hand result', () => {
    const x = tf.tensor4d([0, 4, 8, 12], [1, 2, 2, 1]);
    const y = resizeBilinear(x, 4, 4).dataSync();
    // Rows and columns both sample 0, 0.25, 0.75, 1 of [a, b]: value = a + (b − a)·t on each axis.
    const t = [0, 0.25, 0.75, 1];
    const expected = t.flatMap((ty) => t.map((tx) => 4 * tx + 8 * ty));
    expect(closeness(y, expected, 1e-6, 1e-6)).toBeLessThanOrEqual(1);
    x.dispose();
  });
});

describe('toOriginalFrame', () => {
  it('brings a processed-frame mask back through LLaVA pad-to-square and a resize', () => {
    // Original 12×8, padded to 12×12 (2 rows on top), resized to 24×24.
    const transform = new ImageTransform({
      originalWidth: 12,
      originalHeight: 8,
      padLeft: 0,
      padTop: 2,
      paddedWidth: 12,
      paddedHeight: 12,
      resizedWidth: 24,
      resizedHeight: 24,
      cropLeft: 0,
      cropTop: 0,
      width: 24,
      height: 24,
    });
    // Object in processed pixels x ∈ [6, 14), y ∈ [8, 16): +8 inside, −8 outside.
    const inside = (x: number, y: number) => x >= 6 && x < 14 && y >= 8 && y < 16;
    const map = Float32Array.from({ length: 24 * 24 }, (_, i) =>
      inside(i % 24, Math.floor(i / 24)) ? 8 : -8,
    );
    const logits = tf.tensor3d(map, [1, 24, 24]);
    const back = toOriginalFrame(logits, [24, 24], { width: 12, height: 8, transform });
    expect(back.shape).toEqual([1, 8, 12]);
    const values = back.dataSync();
    // Original pixel (x, y) sits at processed (2x + 1, 2(y + 2) + 1): inside for x ∈ [3, 7), y ∈ [2, 6).
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 12; x++)
        expect((values[y * 12 + x] as number) > 0, `${x},${y}`).toBe(x >= 3 && x < 7 && y >= 2 && y < 6);
    tf.dispose([logits, back]);
  });

  it('samples a low-resolution map over the whole processed frame and honours a centre crop', () => {
    // Original 20×10 → resized 32×16 → centre crop 16×16 (cropLeft 8): the crop keeps original x ∈ [5, 15).
    const transform = new ImageTransform({
      originalWidth: 20,
      originalHeight: 10,
      padLeft: 0,
      padTop: 0,
      paddedWidth: 20,
      paddedHeight: 10,
      resizedWidth: 32,
      resizedHeight: 16,
      cropLeft: 8,
      cropTop: 0,
      width: 16,
      height: 16,
    });
    // A 4×4 map over the 16×16 frame whose value is its column index: at processed x it reads x / 4 − 0.5.
    const map = tf.tensor3d(
      Array.from({ length: 16 }, (_, i) => i % 4),
      [1, 4, 4],
    );
    const back = toOriginalFrame(map, [16, 16], { width: 20, height: 10, transform }).dataSync();
    for (let x = 0; x < 20; x++) {
      const processed = (x + 0.5) * 1.6 - 8;
      const expected = Math.min(Math.max(processed / 4 - 0.5, 0), 3); // clamped at the crop's edges
      expect(back[x]).toBeCloseTo(expected, 5);
    }
    map.dispose();
  });
});

describe('resampleSeparable', () => {
  it('has the gradient of its weighted output (finite differences)', () => {
    const rows = tf.tensor2d(interpolationMatrix(resizeCoords(5, 3), 3), [5, 3]);
    const cols = tf.tensor2d(interpolationMatrix([0.3, -1, 2.7, 1.2], 4), [4, 4]);
    const x = det([2, 3, 4, 2], 3);
    const weights = det([2, 5, 4, 2], 9);
    const f = (input: tf.Tensor) =>
      tf.sum(tf.mul(resampleSeparable(input as tf.Tensor4D, rows, cols), weights)) as tf.Scalar;
    const analytic = tf.grad(f)(x).dataSync();
    const base = x.dataSync().slice();
    const numeric = Array.from(base, (_, i) => {
      const at = (d: number) => {
        const v = base.slice();
        v[i] = (v[i] as number) + d;
        return tf.tidy(() => f(tf.tensor(v, x.shape)).dataSync()[0] as number);
      };
      return (at(1e-2) - at(-1e-2)) / 2e-2;
    });
    expect(closeness(analytic, numeric)).toBeLessThanOrEqual(1);
    tf.dispose([rows, cols, x, weights]);
  });
});
