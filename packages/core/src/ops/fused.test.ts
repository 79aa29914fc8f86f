// The op layer's fused kernels and memory-saving gradients against the plain tfjs compositions they replace
// (policy jsKernels off), float64 references and finite differences.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enableNativeMatmul, initBackend, nativeMatmulStatus } from '../backend/index.js';
import { applyRotary, RotaryEmbedding } from '../llm/rope.js';
import {
  adamwUpdate,
  addSameShape,
  crossEntropy,
  layerNorm,
  linear,
  permute,
  reshape,
  rmsNorm,
  setOpPolicy,
  siluTimes,
  transposeLast2,
  variableGradsFreeing,
} from './index.js';
import { nativeColumnSumActive, setNativeColumnSum } from './kernels/column-sum.js';
import { nativeRotaryActive, setNativeRotary } from './kernels/rotary.js';
import { sumToLastAxis } from './norm.js';
import { analyticGrads, closeness, det, numericGrads, weighted } from './testing.js';

/** Value and analytic gradients of f with the JS kernels on, then off (the plain tfjs path). */
function fusedVsPlain(backend: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]) {
  const run = () => {
    const value = tf.tidy(() =>
      f(...inputs)
        .dataSync()
        .slice(),
    );
    return { value, grads: analyticGrads((...xs) => weighted(f(...xs)), inputs) };
  };
  const fused = run();
  setOpPolicy(backend, { jsKernels: false });
  const plain = run();
  setOpPolicy(backend, null);
  return { fused, plain };
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-6) {
  expect(closeness(a, b, rtol, atol)).toBeLessThan(1);
}

describe.each(['wasm', 'cpu'] as const)('fused ops on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterEach(() => setOpPolicy(backend, null));

  it('crossEntropy from softmax equals the log-sum-exp form, value and gradient, with ignored rows', () => {
    const labels = tf.tensor1d([3, -100, 36, 0, 17, -100], 'int32');
    const { fused, plain } = fusedVsPlain(backend, (x) => crossEntropy(tf.mul(x, 4) as tf.Tensor2D, labels), [
      det([6, 37], 3),
    ]);
    expectClose(fused.value, plain.value);
    expectClose(fused.grads[0], plain.grads[0]);
  });

  it('crossEntropy stays exact where the label probability underflows', () => {
    // Row 0: the label's logit is 200 below the max, so p[label] = 0 in float32; the loss is lse − x[label].
    const logits = tf.tensor2d([
      [0, 200, 1],
      [1, 2, 3],
    ]);
    const labels = tf.tensor1d([0, 2], 'int32');
    const lse = (r: number[]) => {
      const m = Math.max(...r);
      return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
    };
    const expected = (lse([0, 200, 1]) - 0 + lse([1, 2, 3]) - 3) / 2;
    expect(crossEntropy(logits, labels).dataSync()[0]).toBeCloseTo(expected, 3);
  });

  it('crossEntropy names the row of a label outside the vocabulary', () => {
    expect(() => crossEntropy(det([2, 4], 1) as tf.Tensor2D, tf.tensor1d([1, 9], 'int32'))).toThrow(
      /label 9 at row 1/,
    );
  });

  it('adamwUpdate matches torch.optim.AdamW in float64 over three steps, and the tfjs composition', () => {
    const n = 257;
    const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    let [p, m, v] = [det([n], 1), tf.zeros([n]), tf.zeros([n])];
    const ref = {
      p: Array.from(p.dataSync()),
      m: new Array<number>(n).fill(0),
      v: new Array<number>(n).fill(0),
    };
    for (let step = 1; step <= 3; step++) {
      const g = det([n], 10 + step);
      const gv = g.dataSync();
      for (let i = 0; i < n; i++) {
        ref.p[i] *= 1 - hyper.lr * hyper.weightDecay;
        ref.m[i] = hyper.beta1 * ref.m[i] + (1 - hyper.beta1) * gv[i];
        ref.v[i] = hyper.beta2 * ref.v[i] + (1 - hyper.beta2) * gv[i] * gv[i];
        const mHat = ref.m[i] / (1 - hyper.beta1 ** step);
        const vHat = ref.v[i] / (1 - hyper.beta2 ** step);
        ref.p[i] -= (hyper.lr * mHat) / (Math.sqrt(vHat) + hyper.eps);
      }
      setOpPolicy(backend, { jsKernels: false });
      const plain = adamwUpdate(p, g, m, v, { ...hyper, step });
      setOpPolicy(backend, null);
      const fused = adamwUpdate(p, g, m, v, { ...hyper, step });
      for (const k of [0, 1, 2]) expectClose(fused[k].dataSync(), plain[k].dataSync(), 1e-5, 1e-7);
      tf.dispose([p, m, v, g, ...plain]);
      [p, m, v] = fused;
    }
    expectClose(p.dataSync(), ref.p, 1e-6, 1e-7);
    expectClose(m.dataSync(), ref.m, 1e-6, 1e-9);
    tf.dispose([p, m, v]);
  });

  it('rotary embedding (one-pass kernel) equals the rotate_half composition, value and gradient', () => {
    const rope = new RotaryEmbedding(8, 10000, 64);
    for (const angles of [
      rope.range(3, 5),
      rope.gather(
        tf.tensor2d(
          [
            [0, 1, 2, 9, 4],
            [7, 7, 1, 0, 2],
          ],
          undefined,
          'int32',
        ),
        10,
      ),
    ]) {
      const { fused, plain } = fusedVsPlain(backend, (x) => applyRotary(x as tf.Tensor4D, angles), [
        det([2, 3, 5, 8], 4),
      ]);
      expectClose(fused.value, plain.value);
      expectClose(fused.grads[0], plain.grads[0]);
      tf.dispose([angles.cos, angles.sin]);
    }
    rope.dispose();
  });

  it('permute keeping the last axis (row copies) equals tf.transpose, value and gradient', () => {
    for (const [shape, perm] of [
      [
        [2, 3, 2, 4, 3, 8],
        [0, 2, 4, 1, 3, 5],
      ],
      [
        [3, 5, 9],
        [1, 0, 2],
      ],
      [
        [2, 3, 4, 16],
        [2, 0, 1, 3],
      ],
    ] as [number[], number[]][]) {
      const { fused, plain } = fusedVsPlain(backend, (x) => permute(x, perm), [det(shape, 5)]);
      expect(Array.from(fused.value)).toEqual(Array.from(plain.value));
      expectClose(fused.grads[0], plain.grads[0]);
    }
    const ints = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [2, 1, 8], 'int32');
    expect(permute(ints, [1, 0, 2]).dataSync()).toEqual(tf.transpose(ints, [1, 0, 2]).dataSync());
  });

  it('rmsNorm and layerNorm weight/bias gradients (one-pass column sums) equal tf.sum over rows', () => {
    const x = det([3, 5, 16], 6);
    const [w, b] = [tf.add(det([16], 7), 1), det([16], 8)];
    for (const f of [
      (a: tf.Tensor, c: tf.Tensor) => rmsNorm(a, c as tf.Tensor1D, 1e-5),
      (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => layerNorm(a, c as tf.Tensor1D, d as tf.Tensor1D, 1e-5),
    ]) {
      const { fused, plain } = fusedVsPlain(
        backend,
        f as (...xs: tf.Tensor[]) => tf.Tensor,
        [x, w, b].slice(0, f.length),
      );
      fused.grads.forEach((g, i) => {
        expectClose(g, plain.grads[i] as Float32Array, 1e-5, 1e-6);
      });
    }
  });

  it('siluTimes: forward and gradients equal central differences and the unfused chain', () => {
    const inputs = [det([3, 7], 1), det([3, 7], 2)];
    const f = (g: tf.Tensor, u: tf.Tensor) => weighted(siluTimes(g, u));
    const analytic = analyticGrads(f, inputs);
    const numeric = numericGrads(f, inputs);
    for (const [i, a] of analytic.entries()) expect(closeness(a, numeric[i])).toBeLessThan(1);
    const chain = analyticGrads((g, u) => weighted(tf.mul(tf.mul(g, tf.sigmoid(g)), u)), inputs);
    for (const [i, a] of analytic.entries()) expectClose(a, chain[i]);
  });

  it('reshape and addSameShape: values and gradients equal tf.reshape and tf.add', () => {
    const inputs = [det([2, 3, 4], 1), det([6, 4], 2)];
    const ours = (a: tf.Tensor, b: tf.Tensor) => tf.mul(addSameShape(reshape(a, [6, 4]), b), b);
    const theirs = (a: tf.Tensor, b: tf.Tensor) => tf.mul(tf.add(tf.reshape(a, [6, 4]), b), b);
    expectClose(
      tf.tidy(() => ours(inputs[0], inputs[1]).dataSync()),
      theirs(inputs[0], inputs[1]).dataSync(),
    );
    const g1 = analyticGrads((a, b) => weighted(ours(a, b)), inputs);
    const g2 = analyticGrads((a, b) => weighted(theirs(a, b)), inputs);
    for (const [i, g] of g1.entries()) expectClose(g, g2[i]);
  });

  it('transposeLast2 (tiled kernel) equals tf.transpose for odd 2D and batched shapes, with its gradient', () => {
    for (const shape of [
      [17, 33],
      [3, 40, 5],
    ]) {
      const x = det(shape, 4);
      const perm = shape.map((_, i) => i);
      [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2], perm[perm.length - 1]];
      expect(Array.from(transposeLast2(x).dataSync())).toEqual(Array.from(tf.transpose(x, perm).dataSync()));
      const [g] = analyticGrads((t) => weighted(transposeLast2(t)), [x]);
      const [want] = analyticGrads((t) => weighted(tf.transpose(t, perm)), [x]);
      expectClose(g, want);
    }
  });

  it('linear with a wide trained weight (the LM head form, blocked dx) equals x·Wᵀ and its gradients', () => {
    // out = 9000 > 4 · rows and > one 4096 block: the (W·xᵀ)ᵀ forward and three-block dx.
    const x = det([5, 6], 1);
    const w = tf.variable(det([9000, 6], 2) as tf.Tensor2D, true, `wideLinear_${backend}`);
    const dy = det([5, 9000], 3);
    const ours = tf.variableGrads(() => tf.sum(tf.mul(linear(x, w), dy)) as tf.Scalar, [w]);
    const theirs = tf.variableGrads(
      () => tf.sum(tf.mul(tf.matMul(x, tf.transpose(w)), dy)) as tf.Scalar,
      [w],
    );
    expect(ours.value.dataSync()[0]).toBeCloseTo(theirs.value.dataSync()[0], 2);
    expectClose(ours.grads[w.name].dataSync(), theirs.grads[w.name].dataSync());
    const [dx] = analyticGrads((t) => tf.sum(tf.mul(linear(t, w), dy)), [x]);
    const [dxWant] = analyticGrads((t) => tf.sum(tf.mul(tf.matMul(t, tf.transpose(w)), dy)), [x]);
    expectClose(dx, dxWant, 1e-4, 1e-5);
    w.dispose();
  });
});

describe('variableGradsFreeing', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('gives tf.variableGrads’s gradients through shared, aliased and frozen branches, and frees the rest', () => {
    const w1 = tf.variable(det([4, 5], 1), true, 'freeing_w1');
    const w2 = tf.variable(det([5, 3], 2), true, 'freeing_w2');
    const frozen = tf.variable(det([4, 5], 3), false, 'freeing_frozen');
    const unused = tf.variable(det([2], 4), true, 'freeing_unused');
    const x = det([2, 4], 5);
    const loss = () => {
      const h = tf.tanh(tf.matMul(x, w1)); // used twice below
      const side = tf.matMul(x, frozen); // off the x → loss path
      const y = addSameShape(tf.matMul(h, w2), tf.matMul(tf.sigmoid(h), w2)); // aliased dy
      return tf.add(tf.sum(tf.mul(y, y)), tf.sum(tf.mul(h, side))) as tf.Scalar;
    };
    const before = tf.memory().numTensors;
    const ours = variableGradsFreeing(loss, [w1, w2, unused]);
    const theirs = tf.variableGrads(loss, [w1, w2]);
    expect(ours.value.dataSync()[0]).toBeCloseTo(theirs.value.dataSync()[0], 5);
    expect(Object.keys(ours.grads).sort()).toEqual([w1.name, w2.name].sort());
    for (const w of [w1, w2]) expectClose(ours.grads[w.name].dataSync(), theirs.grads[w.name].dataSync());
    // Only the loss and the two gradients outlive the call.
    tf.dispose([ours.value, theirs.value, ...Object.values(theirs.grads)]);
    expect(tf.memory().numTensors - before).toBe(2);
    tf.dispose([...Object.values(ours.grads), w1, w2, frozen, unused, x]);
  });
});

describe('native twins of the JS kernels (wasm with @vistune/native)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('rotary (both directions) and column sums give the JS loops’ bits', async (ctx) => {
    if (!nativeMatmulStatus().active) ctx.skip(`native kernels not active: ${nativeMatmulStatus().reason}`);
    const rope = new RotaryEmbedding(34, 10000, 64);
    const angles = rope.range(0, 7);
    const x = det([3, 2, 7, 34], 5);
    const rows = det([65, 130], 6);
    const run = () =>
      tf.tidy(() => {
        const grads = analyticGrads((t) => weighted(applyRotary(t as tf.Tensor4D, angles)), [x]);
        const sums = [sumToLastAxis(rows).dataSync()];
        return [
          Array.from(applyRotary(x as tf.Tensor4D, angles).dataSync()),
          Array.from(grads[0]),
          Array.from(sums[0]),
        ];
      });
    // Both kernels really ran their native twins (else this compares the JS loops with themselves).
    expect([nativeRotaryActive(), nativeColumnSumActive()]).toEqual([true, true]);
    const native = run();
    setNativeRotary(null);
    setNativeColumnSum(null);
    try {
      expect(run()).toEqual(native);
    } finally {
      await enableNativeMatmul();
      tf.dispose([x, rows, angles.cos, angles.sin]);
      rope.dispose();
    }
  });
});
