import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { benchOps } from './index.js';
import { createToyModel, NAIVE_OPS, OP_LAYER, toyBatch } from './toy-model.js';

describe('benchOps', () => {
  it('the toy model gives the same loss and gradients with the op layer and the naive ops', async () => {
    await initBackend({ backend: 'wasm' });
    const config = { vocab: 40, dim: 16, layers: 2, heads: 4, seqLen: 6, batch: 2 };
    const model = createToyModel(config);
    const ids = toyBatch(config);
    const run = (ops: typeof OP_LAYER) =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => model.loss(ops, ids), model.params);
        return [value, ...model.params.map((p) => grads[p.name])];
      });
    const [opLayer, naive] = [run(OP_LAYER), run(NAIVE_OPS)];
    expect(opLayer[0].dataSync()[0]).toBeCloseTo(Math.log(config.vocab), 1); // random init: near-uniform predictions
    opLayer.forEach((t, i) => {
      const diff = tf.max(tf.abs(tf.sub(t, naive[i]))).dataSync()[0];
      const scale = tf.max(tf.abs(naive[i])).dataSync()[0];
      expect(diff, `tensor ${i}`).toBeLessThanOrEqual(1e-4 * scale + 1e-6);
    });
    tf.dispose([...opLayer, ...naive, ids]);
    model.dispose();
  });

  it('returns structured numbers per backend, reports unavailable ones, and restores the active backend', async () => {
    await initBackend({ backend: 'wasm' });
    const before = tf.memory().numTensors;
    const report = await benchOps({ backends: ['wasm', 'tensorflow'], quick: true });
    expect(report.results.map((r) => r.backend)).toEqual(['wasm']);
    expect(report.skipped.map((s) => s.backend)).toEqual(['tensorflow']);
    const [wasm] = report.results;
    expect(wasm.matmul.map((m) => m.n)).toEqual([256, 512]);
    for (const m of wasm.matmul) expect(m.gflops).toBeGreaterThan(0);
    expect(wasm.attention.speedup).toBeCloseTo(wasm.attention.naiveMs / wasm.attention.opLayerMs, 6);
    expect(wasm.trainStep.parameters).toBeGreaterThan(0);
    expect(wasm.trainStep.opLayerTokensPerSec).toBeGreaterThan(0);
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.memory().numTensors).toBe(before);
  });
});
