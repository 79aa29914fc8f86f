// Global norm and clipping without one addN over every gradient: the chunked fold is bit-identical to a
// single addN on cpu and wasm, never binds more than NORM_ADDN_CHUNK inputs, and the awaited (webgpu-ready)
// training path gives exactly the losses and norms of the synchronous one.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { disposeMultimodalBatch } from '../data/loader.js';
import { Rng } from '../nn/rng.js';
import { tinyMultimodalModel, toyBatch, toySamples } from '../train/test-utils.js';
import { AdamW } from './adamw.js';
import {
  clipByGlobalNorm,
  clipByGlobalNormAsync,
  disposeGradients,
  globalNorm,
  globalNormAsync,
  NORM_ADDN_CHUNK,
  squaredNormSum,
} from './clip.js';
import { computeGradients, computeGradientsAsync } from './gradients.js';

/** The norm as it was computed before: one addN over every squared gradient norm. */
function oneAddNNorm(grads: ReadonlyMap<string, tf.Tensor>): number {
  return tf.tidy(() =>
    Math.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))).dataSync()[0]),
  );
}

/** `count` gradients of assorted shapes and scales (so the float32 sum order matters). */
function randomGrads(count: number, seed: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed);
  const grads = new Map<string, tf.Tensor>();
  for (let i = 0; i < count; i++) {
    const size = 1 + Math.floor(rng.nextFloat() * 300);
    const scale = 10 ** (rng.nextFloat() * 6 - 3);
    grads.set(`p${i}`, tf.mul(tf.tensor1d(rng.normal(size)), scale));
  }
  return grads;
}

let previous: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  previous = tf.getBackend();
});
afterAll(async () => {
  await tf.setBackend(previous);
});

describe.each(['wasm', 'cpu'])('global norm on %s', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
  });

  it('is bit-identical to one addN over every gradient, for 1 to 40 gradients', async () => {
    for (const count of [1, 2, 6, 7, 8, 13, 14, 23, 40]) {
      const grads = randomGrads(count, count);
      const reference = oneAddNNorm(grads);
      expect(globalNorm(grads)).toBe(reference);
      expect(await globalNormAsync(grads)).toBe(reference);
      disposeGradients(grads);
    }
  });

  it('never hands addN more than NORM_ADDN_CHUNK inputs (WebGPU binds each as a storage buffer)', async () => {
    const grads = randomGrads(40, 1);
    const profile = await tf.profile(() => squaredNormSum(grads));
    const addNs = profile.kernels.filter((k) => k.name === 'AddN');
    expect(addNs.length).toBe(Math.ceil((40 - NORM_ADDN_CHUNK) / (NORM_ADDN_CHUNK - 1)) + 1);
    for (const k of addNs) expect(k.inputShapes.length).toBeLessThanOrEqual(NORM_ADDN_CHUNK);
    disposeGradients(grads);
  });

  it('clipByGlobalNormAsync returns the same norm and scaled gradients as clipByGlobalNorm', async () => {
    const grads = randomGrads(11, 5);
    const before = tf.memory().numTensors;
    for (const maxNorm of [1e-3, 1e9]) {
      const sync = clipByGlobalNorm(grads, maxNorm);
      const awaited = await clipByGlobalNormAsync(grads, maxNorm);
      expect(awaited.norm).toBe(sync.norm);
      for (const [name, g] of sync.grads) expect(awaited.grads.get(name)?.dataSync()).toEqual(g.dataSync());
      disposeGradients(sync.grads);
      disposeGradients(awaited.grads);
    }
    expect(tf.memory().numTensors).toBe(before);
    await expect(clipByGlobalNormAsync(grads, 0)).rejects.toThrow(/maxNorm must be > 0, got 0/);
    disposeGradients(grads);
  });
});

describe('training with awaited reads', () => {
  /** AdamW steps of the toy multimodal model with clipping; sync = the old reads and one-addN norm. */
  async function train(mode: 'sync' | 'async', steps: number) {
    const model = tinyMultimodalModel(3);
    const params = model.namedParameters();
    const optimizer = new AdamW(params, { lr: 1e-2, weightDecay: 0.01 });
    const losses: number[] = [];
    const norms: number[] = [];
    for (let step = 0; step < steps; step++) {
      const batch = toyBatch(toySamples(8).slice(step % 2, (step % 2) + 4));
      const lossFn = () => model.forward(batch, { logits: false }).loss as tf.Scalar;
      const { loss, grads } =
        mode === 'sync' ? computeGradients(lossFn, params) : await computeGradientsAsync(lossFn, params);
      let clipped: { grads: Map<string, tf.Tensor>; norm: number };
      if (mode === 'sync') {
        const norm = oneAddNNorm(grads);
        clipped = clipByGlobalNorm(grads, 0.5);
        expect(clipped.norm).toBe(norm);
      } else clipped = await clipByGlobalNormAsync(grads, 0.5);
      optimizer.step(clipped.grads);
      disposeGradients(grads);
      disposeGradients(clipped.grads);
      disposeMultimodalBatch(batch);
      losses.push(loss);
      norms.push(clipped.norm);
    }
    optimizer.dispose();
    model.dispose();
    return { losses, norms };
  }

  it('gives bit-identical losses and gradient norms to the synchronous path (wasm)', async () => {
    await tf.setBackend('wasm');
    const sync = await train('sync', 6);
    const awaited = await train('async', 6);
    expect(awaited.losses).toEqual(sync.losses);
    expect(awaited.norms).toEqual(sync.norms);
    expect(sync.norms.some((n) => n > 0.5)).toBe(true); // clipping took part
    expect(sync.losses[5]).toBeLessThan(sync.losses[0]);
  }, 60_000);
});
