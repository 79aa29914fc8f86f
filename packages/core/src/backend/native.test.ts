import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamwUpdate } from '../ops/adamw.js';
import { nativeAdamWActive } from '../ops/kernels/adamw.js';
import { linear, matmul } from '../ops/matmul.js';
import { opPolicy } from '../ops/policy.js';
import { initBackend } from './init.js';
import {
  disableNativeMatmul,
  enableNativeMatmul,
  NATIVE_ENV_VAR,
  type NativeMatmulStatus,
  nativeMatmulStatus,
} from './native.js';

let enabled: NativeMatmulStatus = { active: false, reason: 'not run' };
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  enabled = await enableNativeMatmul();
});
afterAll(async () => {
  await enableNativeMatmul(); // leave the file's worker as initBackend sets it up
});

/** Values of every tensor the thunk returns (disposed). */
function values(thunk: () => tf.Tensor[]): Float32Array[] {
  return tf.tidy(thunk).map((t) => {
    const v = t.dataSync() as Float32Array;
    t.dispose();
    return v;
  });
}

/** Largest |x − y| / (|y| + 1) over paired arrays of equal length. */
function maxRelDiff(xs: Float32Array[], ys: Float32Array[]): number {
  expect(xs.map((x) => x.length)).toEqual(ys.map((y) => y.length));
  let worst = 0;
  xs.forEach((x, i) => {
    for (let j = 0; j < x.length; j++)
      worst = Math.max(worst, Math.abs(x[j] - ys[i][j]) / (Math.abs(ys[i][j]) + 1));
  });
  return worst;
}

const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Products covering what the kernel takes itself and what it hands back to the wasm kernel. */
const PRODUCTS: [string, () => tf.Tensor][] = [
  ['2D odd sizes', () => tf.matMul(r([7, 129], 1), r([129, 63], 2))],
  ['1-row (decode)', () => tf.matMul(r([1, 257], 3), r([65, 257], 4), false, true)],
  ['transposeA', () => tf.matMul(r([129, 7], 5), r([129, 33], 6), true, false)],
  ['both transposes', () => tf.matMul(r([63, 65], 7), r([31, 63], 8), true, true)],
  ['batched rank 4', () => tf.matMul(r([2, 3, 17, 64], 9), r([2, 3, 64, 19], 10))],
  ['b broadcast over a batch', () => tf.matMul(r([4, 9, 33], 11), r([1, 33, 5], 12))],
  ['a broadcast, b rank 3', () => tf.matMul(r([9, 33], 13), r([3, 33, 5], 14))],
  ['general broadcast (wasm fallback)', () => tf.matMul(r([2, 1, 5, 6], 15), r([1, 3, 6, 4], 16))],
  ['inner size 0', () => tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4]))],
];

describe('native matmul on the wasm backend', () => {
  it('is active here, or says why not', () => {
    if (!enabled.active) {
      console.warn(`native matmul SKIPPED in this run: ${enabled.reason}`);
      expect(enabled.reason?.length).toBeGreaterThan(10);
      return;
    }
    expect(['avx512', 'avx2', 'generic']).toContain(enabled.isa);
    expect(enabled.addon?.label).toMatch(
      /^(prebuilt \(linux-x64, glibc\)|compiled at install|VISTUNE_NATIVE_PATH)$/,
    );
    expect(opPolicy('wasm')).toMatchObject({ explicitTranspose: false, wideLinear: false, jsKernels: true });
  });

  it('gives the wasm kernel’s numbers for every product shape', async (ctx) => {
    ctx.skip(!enabled.active, `native matmul unavailable: ${enabled.reason}`);
    for (const [name, product] of PRODUCTS) {
      await enableNativeMatmul();
      const native = values(() => [product()]);
      disableNativeMatmul();
      const wasm = values(() => [product()]);
      expect(maxRelDiff(native, wasm), name).toBeLessThan(1e-4);
    }
    await enableNativeMatmul();
  });

  it('gives the wasm path’s forward and gradients for matmul and linear (each with its own op policy)', async (ctx) => {
    ctx.skip(!enabled.active, `native matmul unavailable: ${enabled.reason}`);
    const x = r([2, 3, 40, 24], 20);
    const y = r([2, 3, 40, 24], 21);
    const w = r([4100 * 5, 24], 22) as tf.Tensor2D; // out ≥ 4 × rows and > 4096: the wasm policy's wide linear
    const rows = r([6, 24], 23);
    const fwdBwd = () => {
      const [gx, gy] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(matmul(a, b, false, true))))(
        [x, y],
      );
      const frozen = linear(rows, w); // outside a tape: the wasm policy's cached Wᵀ
      const lin = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(linear(a, b as tf.Tensor2D))))([
        rows,
        w,
      ]);
      return [gx, gy, frozen, ...lin];
    };
    const native = values(fwdBwd);
    expect(opPolicy('wasm').explicitTranspose).toBe(false);
    disableNativeMatmul();
    expect(opPolicy('wasm')).toMatchObject({ explicitTranspose: true, wideLinear: true });
    const wasm = values(fwdBwd);
    await enableNativeMatmul();
    expect(maxRelDiff(native, wasm)).toBeLessThan(1e-4);
    tf.dispose([x, y, w, rows]);
  });

  it('runs AdamW natively with the JS loop’s numbers (float32 against float64 arithmetic)', async (ctx) => {
    ctx.skip(!enabled.active, `native matmul unavailable: ${enabled.reason}`);
    expect(nativeAdamWActive()).toBe(true);
    // 70 001 floats: past the two-thread threshold, and not a multiple of the vector width
    const [p, g, m] = [r([70001], 40), r([70001], 41), r([70001], 42)];
    const v = tf.abs(r([70001], 43));
    const hyper = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 7 };
    const update = () => adamwUpdate(p, g, m, v, hyper);
    await enableNativeMatmul({ threads: 2 });
    const native = values(update);
    disableNativeMatmul();
    expect(nativeAdamWActive()).toBe(false);
    const js = values(update);
    await enableNativeMatmul({ threads: 1 });
    const nativeOne = values(update);
    expect(maxRelDiff(native, js)).toBeLessThan(1e-5);
    expect(maxRelDiff(native, nativeOne)).toBe(0); // halves of the buffer, same arithmetic per element
    // and the parameters did move
    expect(maxRelDiff([native[0]], [p.dataSync() as Float32Array])).toBeGreaterThan(1e-4);
    tf.dispose([p, g, m, v]);
  });

  it('runs two threads per product with the same numbers', async (ctx) => {
    ctx.skip(!enabled.active, `native matmul unavailable: ${enabled.reason}`);
    const product = () => [tf.matMul(r([300, 200], 30), r([300, 500], 31), true, false)];
    await enableNativeMatmul({ threads: 1 });
    const one = values(product);
    expect((await enableNativeMatmul({ threads: 2 })).threads).toBe(2);
    const two = values(product);
    await enableNativeMatmul({ threads: 1 });
    expect(maxRelDiff(two, one)).toBe(0); // same kernel, same summation order per element
  });
});

describe('native matmul switched off', () => {
  it(`${NATIVE_ENV_VAR}=0 leaves tfjs-backend-wasm's own kernel and policy, and matMul still works`, async () => {
    const saved = process.env[NATIVE_ENV_VAR];
    process.env[NATIVE_ENV_VAR] = '0';
    try {
      const status = await enableNativeMatmul();
      expect(status).toEqual({ active: false, reason: `disabled by ${NATIVE_ENV_VAR}=0` });
      expect(nativeMatmulStatus().active).toBe(false);
      expect(opPolicy('wasm')).toMatchObject({ explicitTranspose: true, wideLinear: true });
      const info = await initBackend({ backend: 'wasm', native: true });
      expect(info.detail).toContain(`native off: disabled by ${NATIVE_ENV_VAR}=0`);
      const y = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]));
      expect([...(await y.data())]).toEqual([19, 22, 43, 50]);
      y.dispose();
    } finally {
      if (saved === undefined) delete process.env[NATIVE_ENV_VAR];
      else process.env[NATIVE_ENV_VAR] = saved;
    }
    const back = await initBackend({ backend: 'wasm', native: true });
    expect(back.detail).toContain(enabled.active ? 'native kernels' : 'native off');
  });
});
