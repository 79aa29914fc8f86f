import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Initializer, Linear, Rng } from '../nn/index.js';
import { clipByGlobalNorm, computeGradients, disposeGradients, GradientAccumulator } from './index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const IN = 3;
const OUT = 2;

/** Mean squared error of a Linear layer on rows [from, to) of the data. */
function mseLoss(lin: Linear, x: number[][], y: number[][]): () => tf.Scalar {
  return () => tf.mean(tf.square(tf.sub(lin.forward(tf.tensor2d(x)), tf.tensor2d(y)))) as tf.Scalar;
}

/** The same gradients by hand: d/dW mean((xWᵀ + b − y)²) = 2/(N·OUT) Σ r xᵀ, d/db = 2/(N·OUT) Σ r. */
function mseGradReference(w: number[][], b: number[], x: number[][], y: number[][]) {
  const gw = w.map((row) => row.map(() => 0));
  const gb = b.map(() => 0);
  let loss = 0;
  const scale = 2 / (x.length * OUT);
  x.forEach((xi, n) => {
    for (let o = 0; o < OUT; o++) {
      const r = xi.reduce((s, xv, i) => s + xv * w[o][i], b[o]) - y[n][o];
      loss += (r * r) / (x.length * OUT);
      gb[o] += scale * r;
      for (let i = 0; i < IN; i++) gw[o][i] += scale * r * xi[i];
    }
  });
  return { loss, weight: gw.flat(), bias: gb };
}

function data(rng: Rng, n: number): { x: number[][]; y: number[][] } {
  const row = (k: number) => Array.from(rng.normal(k));
  return { x: Array.from({ length: n }, () => row(IN)), y: Array.from({ length: n }, () => row(OUT)) };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(tol);
}

describe('computeGradients', () => {
  it('returns the loss and named gradients of trainable parameters only, without leaking', () => {
    const lin = new Linear(IN, OUT, { init: new Initializer({ seed: 1, std: 0.5 }) });
    const { x, y } = data(new Rng(2), 6);
    const ref = mseGradReference(lin.weight.arraySync(), Array.from(lin.bias!.dataSync()), x, y);
    const before = tf.memory().numTensors;
    const { loss, grads } = computeGradients(mseLoss(lin, x, y), lin.namedParameters());
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(loss).toBeCloseTo(ref.loss, 5);
    expect([...grads.keys()]).toEqual(['weight', 'bias']);
    expectClose(grads.get('weight')!.dataSync(), ref.weight);
    expectClose(grads.get('bias')!.dataSync(), ref.bias);
    disposeGradients(grads);

    lin.setTrainable(['bias'], false);
    const frozen = computeGradients(mseLoss(lin, x, y), lin.namedParameters());
    expect([...frozen.grads.keys()]).toEqual(['weight']);
    disposeGradients(frozen.grads);
    lin.setTrainable(['*'], false);
    expect(() => computeGradients(mseLoss(lin, x, y), lin.namedParameters())).toThrow(
      /no trainable parameter/,
    );
    expect(tf.memory().numTensors).toBe(before);
    lin.dispose();
  });
});

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) above the threshold and keeps values below it', () => {
    const a = [3, -4, 1];
    const b = [
      [2, 0],
      [-1, 5],
    ];
    const norm = Math.sqrt([...a, ...b.flat()].reduce((s, v) => s + v * v, 0));
    const grads = new Map<string, tf.Tensor>([
      ['a', tf.tensor1d(a)],
      ['b', tf.tensor2d(b)],
    ]);
    const before = tf.memory().numTensors;
    const clipped = clipByGlobalNorm(grads, 2);
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(clipped.norm).toBeCloseTo(norm, 5);
    const coef = 2 / (norm + 1e-6);
    expectClose(
      clipped.grads.get('a')!.dataSync(),
      a.map((v) => v * coef),
    );
    expectClose(
      clipped.grads.get('b')!.dataSync(),
      b.flat().map((v) => v * coef),
    );
    const loose = clipByGlobalNorm(grads, 100);
    expect(Array.from(loose.grads.get('b')!.dataSync())).toEqual(b.flat());
    // Inputs are still alive: the caller owns them.
    expect(grads.get('a')!.isDisposed).toBe(false);
    for (const m of [grads, clipped.grads, loose.grads]) disposeGradients(m);
    expect(tf.memory().numTensors).toBe(before - 2);
  });
});

describe('GradientAccumulator', () => {
  it('averaged equal micro-batches equal the big-batch gradient, without leaking', () => {
    const lin = new Linear(IN, OUT, { init: new Initializer({ seed: 3, std: 0.5 }) });
    const { x, y } = data(new Rng(4), 8);
    const big = computeGradients(mseLoss(lin, x, y), lin.namedParameters());
    const before = tf.memory().numTensors;
    const acc = new GradientAccumulator();
    for (let k = 0; k < 8; k += 2) {
      const micro = computeGradients(
        mseLoss(lin, x.slice(k, k + 2), y.slice(k, k + 2)),
        lin.namedParameters(),
      );
      acc.add(micro.grads);
      disposeGradients(micro.grads);
    }
    expect(acc.count).toBe(4);
    expect(tf.memory().numTensors).toBe(before + 2); // running sums only
    const mean = acc.mean();
    expect(acc.count).toBe(0);
    expect(tf.memory().numTensors).toBe(before + 2); // sums freed, means handed out
    for (const name of ['weight', 'bias'])
      expectClose(mean.get(name)!.dataSync(), big.grads.get(name)!.dataSync());
    disposeGradients(mean);
    expect(tf.memory().numTensors).toBe(before);
    disposeGradients(big.grads);
    lin.dispose();
  });

  it('weighted by micro-batch size, unequal micro-batches also equal the big batch', () => {
    const lin = new Linear(IN, OUT, { init: new Initializer({ seed: 5, std: 0.5 }) });
    const { x, y } = data(new Rng(6), 8);
    const big = computeGradients(mseLoss(lin, x, y), lin.namedParameters());
    const acc = new GradientAccumulator();
    for (const [from, to] of [
      [0, 3],
      [3, 8],
    ]) {
      const micro = computeGradients(
        mseLoss(lin, x.slice(from, to), y.slice(from, to)),
        lin.namedParameters(),
      );
      acc.add(micro.grads, to - from);
      disposeGradients(micro.grads);
    }
    const mean = acc.mean();
    for (const name of ['weight', 'bias'])
      expectClose(mean.get(name)!.dataSync(), big.grads.get(name)!.dataSync());
    // Unweighted, the same split is not the big-batch gradient.
    const unweighted = new GradientAccumulator();
    for (const [from, to] of [
      [0, 3],
      [3, 8],
    ]) {
      const micro = computeGradients(
        mseLoss(lin, x.slice(from, to), y.slice(from, to)),
        lin.namedParameters(),
      );
      unweighted.add(micro.grads);
      disposeGradients(micro.grads);
    }
    const off = unweighted.mean();
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(off.get('weight')!, big.grads.get('weight')!))).dataSync()[0],
    );
    expect(diff).toBeGreaterThan(1e-3);
    expect(() => acc.mean()).toThrow(/nothing was added/);
    for (const m of [mean, off, big.grads]) disposeGradients(m);
    lin.dispose();
  });

  it('one micro-batch: the mean is its gradients exactly (no multiply and divide by its weight); takeSums still weighs', () => {
    const lin = new Linear(IN, OUT, { init: new Initializer({ seed: 7, std: 0.5 }) });
    const { x, y } = data(new Rng(8), 5);
    const { grads } = computeGradients(mseLoss(lin, x, y), lin.namedParameters());
    const before = tf.memory().numTensors;
    const acc = new GradientAccumulator();
    acc.add(grads, 3.7);
    const mean = acc.mean();
    for (const name of ['weight', 'bias'])
      expect(Array.from(mean.get(name)!.dataSync())).toEqual(Array.from(grads.get(name)!.dataSync()));
    disposeGradients(mean);
    expect(tf.memory().numTensors).toBe(before);
    acc.add(grads, 3);
    const { sums, totalWeight, microBatches } = acc.takeSums();
    expect([totalWeight, microBatches]).toEqual([3, 1]);
    const threeG = tf.mul(grads.get('bias')!, 3);
    expectClose(sums.get('bias')!.dataSync(), threeG.dataSync());
    threeG.dispose();
    disposeGradients(sums);
    // A second micro-batch after the first: the weighted mean again ((3·g + 1·g) / 4 = g).
    acc.add(grads, 3);
    acc.add(grads, 1);
    const twice = acc.mean();
    expectClose(twice.get('weight')!.dataSync(), grads.get('weight')!.dataSync());
    disposeGradients(twice);
    expect(tf.memory().numTensors).toBe(before);
    disposeGradients(grads);
    lin.dispose();
  });
});
