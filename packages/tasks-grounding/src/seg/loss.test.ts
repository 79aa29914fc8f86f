// LISA's sigmoid BCE and DICE against plain-JS sums, and the BCE gradient against its closed form σ(x) − y.
import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { diceLoss, sigmoidBceLoss } from './loss.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const K = 2;
const P = 12;
// Logits include an exact 0 and large magnitudes (the stable forms must not overflow).
const x = Float32Array.from({ length: K * P }, (_, i) =>
  i === 5 ? 0 : Math.sin(i * 1.3) * (i % 7 === 0 ? 40 : 3),
);
const y = Float32Array.from({ length: K * P }, (_, i) => (Math.cos(i * 0.9) > 0 ? 1 : 0));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

describe('mask losses', () => {
  it('BCE is the mean over masks of the mean over pixels of −[y log σ + (1 − y) log(1 − σ)]', () => {
    let total = 0;
    for (let k = 0; k < K; k++) {
      let sum = 0;
      for (let i = k * P; i < (k + 1) * P; i++) {
        const v = x[i] as number;
        // log σ(v) and log(1 − σ(v)) without overflow.
        const logP = -Math.log1p(Math.exp(-Math.abs(v))) + Math.min(v, 0);
        const logQ = -Math.log1p(Math.exp(-Math.abs(v))) - Math.max(v, 0);
        sum -= (y[i] as number) * logP + (1 - (y[i] as number)) * logQ;
      }
      total += sum / P;
    }
    const got = tf.tidy(
      () => sigmoidBceLoss(tf.tensor3d(x, [K, 3, 4]), tf.tensor3d(y, [K, 3, 4])).dataSync()[0],
    );
    expect(got).toBeCloseTo(total / K, 5);
  });

  it('DICE follows LISA (scale 1000, eps 1e-6) and the "+1" form with scale 1, eps 1', () => {
    const dice = (scale: number, eps: number) => {
      let total = 0;
      for (let k = 0; k < K; k++) {
        let inter = 0;
        let p = 0;
        let t = 0;
        for (let i = k * P; i < (k + 1) * P; i++) {
          inter += sigmoid(x[i] as number) * (y[i] as number);
          p += sigmoid(x[i] as number);
          t += y[i] as number;
        }
        total += 1 - ((2 * inter) / scale + eps) / ((p + t) / scale + eps);
      }
      return total / K;
    };
    for (const [scale, eps] of [
      [1000, 1e-6],
      [1, 1],
    ] as const) {
      const got = tf.tidy(
        () => diceLoss(tf.tensor2d(x, [K, P]), tf.tensor2d(y, [K, P]), { scale, eps }).dataSync()[0],
      );
      expect(got).toBeCloseTo(dice(scale, eps), 5);
    }
    expect(dice(1000, 1e-6)).not.toBeCloseTo(dice(1, 1), 3);
  });

  it('BCE gradient is (σ(x) − y) / (K·P), also at x = 0', () => {
    const grad = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => sigmoidBceLoss(v, tf.tensor2d(y, [K, P])))(tf.tensor2d(x, [K, P]))
        .dataSync(),
    );
    x.forEach((v, i) => {
      expect(grad[i]).toBeCloseTo((sigmoid(v) - (y[i] as number)) / (K * P), 6);
    });
  });
});
