import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FlamingoConfigSchema, PerceiverResamplerConfigSchema } from './config.js';
import { everyNthLayer, FlamingoAdapter, PerceiverResamplerAdapter } from './perceiver.js';
import { register } from './register.js';
import {
  cachedAndFullGreedy,
  compositionLoss,
  det,
  expectGradientsMatchFiniteDifferences,
  hookedAndPlainLogits,
  promptWithImage,
  randomizeParameters,
  relativeError,
  tinyComposition,
} from './test-utils.js';

const tiny = { inDim: 6, outDim: 16, numLatents: 3, depth: 2, heads: 2, dimHead: 4, ffMult: 2 };
const tinyFlamingo = { ...tiny, llmLayers: 2, crossAttnEveryNLayers: 1, xattnHeads: 2, xattnDimHead: 4 };

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('Perceiver resampler (perceiver_resampler)', () => {
  it('gives numLatents slots for any number of features, with OpenFlamingo names', () => {
    const a = new PerceiverResamplerAdapter(PerceiverResamplerConfigSchema.parse(tiny));
    expect(a.numSlots({ tokens: 50, prefixTokens: 1 })).toBe(3);
    for (const S of [1, 7]) {
      const y = a.forward(det([2, S, 6], S) as tf.Tensor3D);
      expect(y.shape).toEqual([2, 3, 16]);
      y.dispose();
    }
    const names = a.namedParameters().map(([n]) => n);
    expect(names).toEqual(
      expect.arrayContaining([
        'perceiver.latents',
        'perceiver.layers.0.0.norm_media.weight',
        'perceiver.layers.1.0.to_kv.weight',
        'perceiver.layers.1.1.0.bias',
        'perceiver.layers.1.1.3.weight',
        'perceiver.norm.weight',
        'proj.weight',
      ]),
    );
    a.dispose();
  });

  it('trains on wasm: gradients match finite differences', () => {
    const a = new PerceiverResamplerAdapter(PerceiverResamplerConfigSchema.parse({ ...tiny, depth: 1 }));
    randomizeParameters(a, 3);
    const x = det([1, 4, 6], 2) as tf.Tensor3D;
    const probe = det([1, 3, 16], 9);
    expectGradientsMatchFiniteDifferences(a, () =>
      tf.tidy(() => tf.sum(tf.mul(a.forward(x), probe)) as tf.Scalar),
    );
    a.dispose();
  });
});

describe('Flamingo gated cross-attention (flamingo)', () => {
  it('puts a block before layers (i+1) % n == 0 and checks the LLM depth', () => {
    expect(everyNthLayer(8, 4)).toEqual([3, 7]);
    const a = new FlamingoAdapter(
      FlamingoConfigSchema.parse({ ...tinyFlamingo, llmLayers: 4, crossAttnEveryNLayers: 2 }),
    );
    expect(a.blockHook.layers(4)).toEqual([1, 3]);
    expect(a.namedParameters().map(([n]) => n)).toContain('gated_cross_attn_layers.3.attn_gate');
    expect(() => a.blockHook.layers(6)).toThrow(
      /llmLayers is 4 but the LLM has 6 layers: set llmLayers to 6/,
    );
    a.dispose();
  });

  it('gates at 0: the untrained model gives the plain LLM’s logits; an open attention gate changes only tokens from the image on', () => {
    const features = det([4, 6], 3);
    const prompt = promptWithImage([1, 5, 7], 3, [9, 11]);
    const closed = new FlamingoAdapter(FlamingoConfigSchema.parse(tinyFlamingo));
    const same = hookedAndPlainLogits(closed, features, prompt);
    expect(Array.from(same.hooked)).toEqual(Array.from(same.plain));
    same.dispose();

    const open = new FlamingoAdapter(FlamingoConfigSchema.parse(tinyFlamingo));
    // The attention gate only: the feed-forward (gated by ff_gate) acts on every token, as OpenFlamingo's.
    for (const block of open.blocks.values()) block.attn_gate.assign(tf.tensor1d([0.5]));
    const differ = hookedAndPlainLogits(open, features, prompt);
    const V = 32;
    const before = (l: Float32Array) => l.slice(0, 3 * V);
    const after = (l: Float32Array) => l.slice(3 * V);
    expect(Array.from(before(differ.hooked))).toEqual(Array.from(before(differ.plain)));
    expect(relativeError(after(differ.hooked), after(differ.plain))).toBeGreaterThan(1e-3);
    differ.dispose();
    features.dispose();
  });

  it('decoding with the KV cache gives the logits of the full forward (media kept across steps)', () => {
    const a = new FlamingoAdapter(FlamingoConfigSchema.parse(tinyFlamingo));
    randomizeParameters(a, 5);
    const { model } = tinyComposition(a);
    const features = det([4, 6], 4);
    const { cached, full } = cachedAndFullGreedy(model, features, promptWithImage([1, 5], 3, [9]));
    expect(full).toEqual(cached);
    model.dispose();
    features.dispose();
  });

  it('trains on wasm through the LLM: every connector gradient matches finite differences', () => {
    const a = new FlamingoAdapter(FlamingoConfigSchema.parse({ ...tinyFlamingo, depth: 1 }));
    randomizeParameters(a, 7);
    const { model } = tinyComposition(a);
    const features = det([4, 6], 6);
    const { loss, dispose } = compositionLoss(model, features, 3);
    const names = a
      .namedParameters()
      .map(([n]) => `modalities.image.adapter.${n}`)
      .filter((n) => /gate|to_q|proj\.weight|latents/.test(n));
    expectGradientsMatchFiniteDifferences(model, loss, { names });
    model.dispose();
    dispose();
    features.dispose();
  });

  it('is registered as perceiver_resampler and flamingo', async () => {
    const registry = createRegistry();
    register(registry);
    const f = await registry.create('adapter', { type: 'flamingo', inDim: 8, outDim: 16, llmLayers: 8 });
    expect((f as FlamingoAdapter).blockHook.layers(8)).toEqual([3, 7]);
    const p = await registry.create('adapter', { type: 'perceiver_resampler', inDim: 8, outDim: 16 });
    expect((p as PerceiverResamplerAdapter).numSlots({ tokens: 10, prefixTokens: 0 })).toBe(64);
    (f as FlamingoAdapter).dispose();
    (p as PerceiverResamplerAdapter).dispose();
  });
});
