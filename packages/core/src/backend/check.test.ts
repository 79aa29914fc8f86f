import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { checkBackend, initBackend, OP_FAMILIES } from './index.js';

describe('checkBackend', () => {
  it('passes every op family on wasm, agreeing with cpu, without leaking tensors', async () => {
    await initBackend({ backend: 'wasm' });
    const results = await checkBackend();
    expect(results.map((r) => r.family)).toEqual(Object.keys(OP_FAMILIES));
    for (const r of results) {
      expect(r, `${r.family}: ${r.error}`).toMatchObject({ ok: true });
      expect(r.maxRelDiffVsCpu).toBeLessThan(1e-3);
    }
    expect(tf.getBackend()).toBe('wasm');
  });

  it('passes every op family on cpu', async () => {
    await initBackend({ backend: 'cpu' });
    const results = await checkBackend();
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it('reports the failing family with the kernel error when a wasm kernel is missing', async () => {
    await initBackend({ backend: 'wasm' });
    const shim = tf.getKernel('UnsortedSegmentSum', 'wasm');
    if (!shim) throw new Error('the UnsortedSegmentSum shim should be registered on wasm');
    tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
    try {
      const [gather, softmax] = await checkBackend({ families: ['gather', 'softmax'] });
      expect(gather.ok).toBe(false);
      expect(gather.error).toMatch(/UnsortedSegmentSum/);
      expect(softmax.ok).toBe(true);
    } finally {
      tf.registerKernel(shim);
    }
  });
});
