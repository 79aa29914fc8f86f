import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { QwenResamplerConfigSchema } from './config.js';
import { QwenResamplerAdapter, sinCos2d } from './qwen-resampler.js';
import { register } from './register.js';
import {
  det,
  expectGradientsMatchFiniteDifferences,
  randomizeParameters,
  relativeError,
} from './test-utils.js';

const tiny = { inDim: 6, outDim: 8, gridSize: 2, heads: 2 };

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('Qwen-VL resampler (qwen_resampler)', () => {
  it('2D sin-cos encodings: column in the first half, row in the second', () => {
    const e = sinCos2d(4, 2, 2);
    // Cell (row 1, col 0): [sin 0, cos 0, sin 1, cos 1] (ω = 1 for dim 4).
    expect(Array.from(e.slice(8, 12))).toEqual([0, 1, Math.fround(Math.sin(1)), Math.fround(Math.cos(1))]);
    expect(Array.from(sinCos2d(8, 1, 2).slice(8, 10))).toEqual([
      Math.fround(Math.sin(1)),
      Math.fround(Math.sin(0.01)),
    ]);
  });

  it('gives gridSize² slots for any feature grid, position-aware, and refuses a CLS token', () => {
    const a = new QwenResamplerAdapter(QwenResamplerConfigSchema.parse(tiny));
    randomizeParameters(a, 1);
    expect(a.numSlots({ tokens: 9, prefixTokens: 0 })).toBe(4);
    const x = det([1, 9, 6], 2) as tf.Tensor3D;
    const y = a.forward(x, { layout: { tokens: 9, prefixTokens: 0 } });
    expect(y.shape).toEqual([1, 4, 8]);
    // Reordering the patches changes the output (keys carry their grid positions); without them it is
    // a permutation-invariant pooling and the difference float32 rounding (~1e-7).
    const shuffled = tf.reverse(x, 1) as tf.Tensor3D;
    expect(relativeError(a.forward(shuffled, { layout: { tokens: 9, prefixTokens: 0 } }), y)).toBeGreaterThan(
      1e-5,
    );
    expect(() => a.numSlots({ tokens: 10, prefixTokens: 1 })).toThrow(/strategy 'default'/);
    expect(a.namedParameters().map(([n]) => n)).toEqual(
      expect.arrayContaining([
        'attn_pool.query',
        'attn_pool.kv_proj.weight',
        'attn_pool.attn.in_proj_weight',
        'ln_post.bias',
        'proj',
      ]),
    );
    a.dispose();
  });

  it('trains on wasm: gradients match finite differences', () => {
    const a = new QwenResamplerAdapter(QwenResamplerConfigSchema.parse(tiny));
    randomizeParameters(a, 4);
    const x = det([2, 4, 6], 3) as tf.Tensor3D;
    const probe = det([2, 4, 8], 5);
    const layout = { tokens: 4, prefixTokens: 0 };
    expectGradientsMatchFiniteDifferences(a, () =>
      tf.tidy(() => tf.sum(tf.mul(a.forward(x, { layout }), probe)) as tf.Scalar),
    );
    a.dispose();
  });

  it('is registered as qwen_resampler (256 queries by default)', async () => {
    const registry = createRegistry();
    register(registry);
    const a = (await registry.create('adapter', {
      type: 'qwen_resampler',
      inDim: 8,
      outDim: 16,
    })) as QwenResamplerAdapter;
    expect(a.numSlots({ tokens: 64, prefixTokens: 0 })).toBe(256);
    a.dispose();
  });
});
