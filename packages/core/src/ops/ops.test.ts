import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import {
  attention,
  clearTransposedWeightCache,
  crossEntropy,
  embedding,
  layerNorm,
  linear,
  matmul,
  rmsNorm,
  setOpPolicy,
} from './index.js';
import { analyticGrads, closeness, det, numericGrads, weighted } from './testing.js';

/** Asserts forward equals the reference and the gradients equal central differences. */
function checkOp(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  reference: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
) {
  const got = tf.tidy(() => f(...inputs));
  const want = tf.tidy(() => reference(...inputs));
  expect(got.shape).toEqual(want.shape);
  expect(closeness(got.dataSync(), want.dataSync(), 1e-4, 1e-5)).toBeLessThan(1);
  tf.dispose([got, want]);
  const scalar = (...xs: tf.Tensor[]) => weighted(f(...xs));
  const analytic = analyticGrads(scalar, inputs);
  const numeric = numericGrads(scalar, inputs);
  for (const [i, a] of analytic.entries())
    expect(closeness(a, numeric[i]), `gradient of input ${i}`).toBeLessThan(1);
}

/** The contract's first, unoptimised attention (tiled K/V, where-masks), as an independent reference. */
function naiveAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  causal: boolean,
  offset: number | undefined,
  keyMask?: tf.Tensor2D,
) {
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const rep = H / Hkv;
  const kk = tf.reshape(tf.tile(tf.reshape(k, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  const vv = tf.reshape(tf.tile(tf.reshape(v, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  let scores = tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(D));
  if (causal) {
    const off = offset ?? S - T;
    const allowed = tf.lessEqual(
      tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]),
      tf.reshape(tf.add(tf.range(0, T, 1, 'int32'), off), [T, 1]),
    );
    scores = tf.where(tf.broadcastTo(allowed, scores.shape), scores, tf.fill(scores.shape, -1e9));
  }
  if (keyMask) {
    const keep = tf.reshape(tf.cast(keyMask, 'bool'), [B, 1, 1, S]);
    scores = tf.where(tf.broadcastTo(keep, scores.shape), scores, tf.fill(scores.shape, -1e9));
  }
  return tf.matMul(tf.softmax(scores), vv);
}

describe.each(['wasm', 'cpu'] as const)('op layer on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterEach(() => setOpPolicy(backend, null));

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('matmul 2D and batched with transposeA=%s transposeB=%s', (tA, tB) => {
    const shapeA = (batch: number[], m: number, k: number) => [...batch, ...(tA ? [k, m] : [m, k])];
    const shapeB = (batch: number[], k: number, n: number) => [...batch, ...(tB ? [n, k] : [k, n])];
    const ref = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, tA, tB);
    const f = (a: tf.Tensor, b: tf.Tensor) => matmul(a, b, tA, tB);
    checkOp(f, ref, [det(shapeA([], 3, 4), 1), det(shapeB([], 4, 5), 2)]);
    checkOp(f, ref, [det(shapeA([2], 3, 4), 3), det(shapeB([2], 4, 2), 4)]);
    setOpPolicy(backend, { perSliceMinWork: 0 }); // the per-slice 2D path
    checkOp(f, ref, [det(shapeA([2], 3, 4), 3), det(shapeB([2], 4, 2), 4)]);
  });

  it('matmul of a batched a with a shared 2D b', () => {
    checkOp(
      (a, b) => matmul(a, b),
      (a, b) => tf.matMul(a, b),
      [det([2, 3, 4], 5), det([4, 2], 6)],
    );
    checkOp(
      (a, b) => matmul(a, b, false, true),
      (a, b) => tf.matMul(a, b, false, true),
      [det([2, 3, 4], 5), det([2, 4], 6)],
    );
  });

  it('linear with HF [out, in] weights, bias and a 3D input', () => {
    const ref = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.add(tf.matMul(x, tf.transpose(w)), b);
    checkOp((x, w, b) => linear(x, w as tf.Tensor2D, b as tf.Tensor1D), ref, [
      det([2, 3, 4], 1),
      det([5, 4], 2),
      det([5], 3),
    ]);
    checkOp(
      (x, w) => linear(x, w as tf.Tensor2D),
      (x, w) => tf.matMul(x, tf.transpose(w)),
      [det([3, 4], 1), det([2, 4], 2)],
    );
  });

  it('rmsNorm', () => {
    const ref = (x: tf.Tensor, w: tf.Tensor) =>
      tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))), w);
    checkOp((x, w) => rmsNorm(x, w as tf.Tensor1D, 1e-5), ref, [det([2, 3, 6], 1), tf.add(det([6], 2), 1)]);
  });

  it('layerNorm', () => {
    const ref = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), w), b);
    };
    checkOp((x, w, b) => layerNorm(x, w as tf.Tensor1D, b as tf.Tensor1D, 1e-5), ref, [
      det([2, 3, 6], 1),
      tf.add(det([6], 2), 1),
      det([6], 3),
    ]);
  });

  it.each([
    ['plain MHA', 4, 4, false, undefined, false],
    ['causal GQA', 4, 2, true, undefined, false],
    ['causal GQA with queryOffset and key padding', 4, 1, true, 1, true],
  ] as const)('attention: %s', (_name, H, Hkv, causal, offset, padded) => {
    const [B, T, S, D] = [2, 3, 5, 4];
    const keyMask = padded
      ? (tf.tensor2d(
          [
            [0, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
          ],
          [B, S],
          'int32',
        ) as tf.Tensor2D)
      : undefined;
    const opts = { causal, queryOffset: offset, keyMask };
    const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
      attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, opts);
    const ref = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
      naiveAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, causal, offset, keyMask);
    const inputs = [det([B, H, T, D], 1), det([B, Hkv, S, D], 2), det([B, Hkv, S, D], 3)];
    checkOp(f, ref, inputs);
    setOpPolicy(backend, { explicitTranspose: true, perSliceMinWork: 0 }); // one [R, D]·[D, S] block at a time
    checkOp(f, ref, inputs);
  });

  it('crossEntropy ignores -100 labels and matches log-softmax + one-hot', () => {
    const labels = tf.tensor1d([2, -100, 0, 4], 'int32');
    const ref = (x: tf.Tensor) => {
      const picked = tf.sum(tf.mul(tf.logSoftmax(x), tf.oneHot(tf.tensor1d([2, 0, 0, 4], 'int32'), 5)), -1);
      return tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d([1, 0, 1, 1])))), 3);
    };
    checkOp(
      (x) => crossEntropy(tf.mul(x, 3) as tf.Tensor2D, labels),
      (x) => ref(tf.mul(x, 3)),
      [det([4, 5], 1)],
    );
  });

  it('crossEntropy with every label ignored is 0 with a zero gradient', () => {
    const x = tf.variable(det([2, 3], 1), true, `ceAllIgnored_${backend}`);
    const labels = tf.tensor1d([-100, -100], 'int32');
    const [loss, grad] = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => crossEntropy(x as tf.Tensor2D, labels), [x]);
      return [value, grads[x.name]];
    });
    expect(loss.dataSync()[0]).toBe(0);
    expect(Array.from(grad.dataSync()).every((g) => g === 0)).toBe(true);
  });

  it('embedding: forward is a row lookup and the gradient a scatter-add of the output gradient', () => {
    const table = det([5, 3], 1);
    const ids = tf.tensor2d(
      [
        [4, 0, 4],
        [1, 4, 0],
      ],
      [2, 3],
      'int32',
    );
    const y = embedding(table as tf.Tensor2D, ids);
    expect(y.shape).toEqual([2, 3, 3]);
    expect(Array.from(y.dataSync().slice(0, 3))).toEqual(Array.from(table.dataSync().slice(12, 15)));
    const dy = det([2, 3, 3], 2);
    const [g] = analyticGrads((t) => tf.sum(tf.mul(embedding(t as tf.Tensor2D, ids), dy)), [table]);
    const expected = new Float32Array(15);
    const idv = ids.dataSync();
    const dyv = dy.dataSync();
    idv.forEach((id, i) => {
      for (let j = 0; j < 3; j++) expected[id * 3 + j] += dyv[i * 3 + j];
    });
    expect(closeness(g, expected, 1e-5, 1e-6)).toBeLessThan(1);
  });
});

describe('transposed weight cache (wasm)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', native: false }); // the cache serves XNNPACK's policy, not native matmul's
  });
  afterAll(async () => {
    await initBackend({ backend: 'wasm', native: true });
  });

  it('reuses Wᵀ of a frozen weight, follows assign(), frees on clear, and never caches a weight being trained', () => {
    clearTransposedWeightCache();
    const x = det([3, 4], 1);
    const frozen = tf.variable(det([5, 4], 2) as tf.Tensor2D, false, 'cacheTestFrozen');
    const y1 = linear(x, frozen);
    const afterFirst = tf.memory().numDataBuffers;
    const y2 = linear(x, frozen);
    expect(tf.memory().numDataBuffers - afterFirst).toBe(1); // only y2's data: Wᵀ came from the cache
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y1.dataSync()));
    frozen.assign(tf.mul(frozen, 2));
    const y3 = linear(x, frozen);
    expect(closeness(y3.dataSync(), tf.mul(y1, 2).dataSync(), 1e-6, 1e-7)).toBeLessThan(1);
    expect(clearTransposedWeightCache()).toBe(1);

    const trained = tf.variable(det([5, 4], 3) as tf.Tensor2D, true, 'cacheTestTrained');
    tf.variableGrads(() => tf.sum(linear(x, trained)) as tf.Scalar, [trained]);
    expect(clearTransposedWeightCache()).toBe(0);
    tf.dispose([x, frozen, trained, y1, y2, y3]);
  });
});
