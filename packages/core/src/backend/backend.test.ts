import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { currentBackend, initBackend, probeBackends } from './index.js';

describe('initBackend', () => {
  it('activates an explicitly requested backend and is idempotent', async () => {
    const info = await initBackend({ backend: 'wasm' });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.detail).toContain('SIMD');
    await tf.setBackend('cpu');
    const again = await initBackend();
    expect(again).toBe(info);
    expect(tf.getBackend()).toBe('wasm');
    expect(currentBackend()).toBe(info);
  });

  it('switches when a different backend is asked for', async () => {
    const info = await initBackend({ backend: 'cpu' });
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  const hasTfjsNode = (name: string) => {
    try {
      import.meta.resolve(name);
      return true;
    } catch {
      return false;
    }
  };
  it.skipIf(hasTfjsNode('@tensorflow/tfjs-node-gpu') || hasTfjsNode('@tensorflow/tfjs-node'))(
    'names the reason and the fix when a requested backend is not installed',
    async () => {
      await expect(initBackend({ backend: 'tensorflow' })).rejects.toThrow(
        /tfjs-node-gpu: .*not installed.*To get it: .*CUDA 11\.2/,
      );
      expect(tf.getBackend()).toBe('cpu');
    },
  );

  it('rejects an unknown VISTUNE_BACKEND naming the variable', async () => {
    process.env.VISTUNE_BACKEND = 'tpu';
    try {
      await expect(initBackend()).rejects.toThrow(/VISTUNE_BACKEND="tpu"/);
    } finally {
      delete process.env.VISTUNE_BACKEND;
    }
  });
});

describe('probeBackends', () => {
  it('reports every provider with a reason when unavailable and restores the active backend', async () => {
    await initBackend({ backend: 'cpu' });
    const statuses = await probeBackends();
    expect(statuses.map((s) => s.provider)).toEqual(['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu']);
    for (const s of statuses) {
      expect(s.howToGet.length).toBeGreaterThan(10);
      if (!s.available) expect(s.reason).toBeTruthy();
    }
    expect(statuses.find((s) => s.provider === 'wasm')?.available).toBe(true);
    expect(statuses.find((s) => s.provider === 'cpu')?.available).toBe(true);
    expect(tf.getBackend()).toBe('cpu');
  });
});

describe('kernel shims', () => {
  it('give gather a gradient on wasm equal to the scatter-add computed by hand', async () => {
    await initBackend({ backend: 'wasm' });
    const table = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const ids = tf.tensor1d([2, 0, 2, -1 + 1], 'int32');
    const dy = tf.tensor2d([1, 10, 100, 1000, 7, 70, 3, 30], [4, 2]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), dy)))(table);
    // row 0 gets dy rows 1 and 3, row 2 gets rows 0 and 2, row 1 nothing
    expect(Array.from(await g.data())).toEqual([103, 1030, 0, 0, 8, 80]);
    tf.dispose([table, ids, dy, g]);
  });

  it('give conv2d a filter gradient on wasm equal to the cpu one', async () => {
    const run = async (backend: 'wasm' | 'cpu') => {
      await initBackend({ backend });
      const x = tf.tensor4d(
        Array.from({ length: 2 * 5 * 5 * 3 }, (_, i) => Math.sin(i)),
        [2, 5, 5, 3],
      );
      const w = tf.tensor4d(
        Array.from({ length: 2 * 2 * 3 * 4 }, (_, i) => Math.cos(i)),
        [2, 2, 3, 4],
      );
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))),
      )([x, w]);
      const out = [Array.from(await dx.data()), Array.from(await dw.data())];
      tf.dispose([x, w, dx, dw]);
      return out;
    };
    const [wasmDx, wasmDw] = await run('wasm');
    const [cpuDx, cpuDw] = await run('cpu');
    for (const [i, v] of wasmDw.entries()) expect(v).toBeCloseTo(cpuDw[i], 3);
    for (const [i, v] of wasmDx.entries()) expect(v).toBeCloseTo(cpuDx[i], 3);
  });
});

describe('wasm Identity', () => {
  it('shares the buffer (a clone adds no data buffer) and the clone outlives the original, also as a saved tensor', async () => {
    await initBackend({ backend: 'wasm' });
    const x = tf.range(0, 1 << 20, 1, 'float32');
    const before = tf.memory().numDataBuffers;
    const copy = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(before);
    x.dispose();
    expect(copy.dataSync()[12345]).toBe(12345);
    // tfjs clones what Square saves for its gradient: the gradient still reads the right values
    const v = tf.tensor1d([1, 2, 3]);
    expect(
      Array.from(
        tf
          .grad((t: tf.Tensor) => tf.sum(tf.square(t)))(v)
          .dataSync(),
      ),
    ).toEqual([2, 4, 6]);
    tf.dispose([copy, v]);
  });
});
