import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { MMAdapterConfigSchema } from './config.js';
import { MMAdapter } from './mm-adapter.js';
import { register } from './register.js';
import {
  compositionLoss,
  det,
  expectGradientsMatchFiniteDifferences,
  hookedAndPlainLogits,
  promptWithImage,
  randomizeParameters,
  relativeError,
  tinyComposition,
} from './test-utils.js';

const tiny = { inDim: 6, outDim: 16, llmLayers: 2, hiddenDim: 4 };

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('MM-Adapter (LaVIN, mm_adapter)', () => {
  it('zero-initialised up-projections: the untrained model gives the plain LLM’s logits', () => {
    const a = new MMAdapter(MMAdapterConfigSchema.parse(tiny));
    const { hooked, plain, dispose } = hookedAndPlainLogits(
      a,
      det([3, 6], 1),
      promptWithImage([1, 4], 3, [6, 8]),
    );
    expect(Array.from(hooked)).toEqual(Array.from(plain));
    dispose();
    const trained = new MMAdapter(MMAdapterConfigSchema.parse(tiny));
    randomizeParameters(trained, 3);
    const after = hookedAndPlainLogits(trained, det([3, 6], 1), promptWithImage([1, 4], 3, [6, 8]));
    expect(relativeError(after.hooked, after.plain)).toBeGreaterThan(1e-3);
    after.dispose();
  });

  it('routes by modality: weight [1, 0] ignores conv_D; text-only and image samples get different weights', () => {
    const a = new MMAdapter(MMAdapterConfigSchema.parse(tiny));
    randomizeParameters(a, 2);
    const layer = a.layers[0]!.attn;
    const x = det([1, 3, 16], 3) as tf.Tensor3D;
    const onlyB = tf.tensor2d([[1, 0]]);
    const before = layer.forward(x, onlyB);
    layer.conv_D.weight.assign(tf.mul(layer.conv_D.weight, 7));
    expect(relativeError(layer.forward(x, onlyB), before)).toBe(0);
    const rows = tf.tidy(() => layer.route(a.modality_embedding).arraySync());
    expect(rows[0]![0]! + rows[0]![1]!).toBeCloseTo(1, 6);
    expect(Math.abs(rows[0]![0]! - rows[1]![0]!)).toBeGreaterThan(1e-4);
    a.dispose();
  });

  it('a mixed batch routes its text-only sample with the text modality token, as a text-only call does', () => {
    const a = new MMAdapter(MMAdapterConfigSchema.parse(tiny));
    randomizeParameters(a, 4);
    const { model } = tinyComposition(a);
    const layer = a.layers[0]!.attn;
    const seen: number[][][] = [];
    const route = layer.route.bind(layer);
    layer.route = (tokens) => {
      const w = route(tokens);
      seen.push(w.arraySync());
      return w;
    };
    const expected = tf.tidy(() => layer.route(a.modality_embedding).arraySync()); // [text, image-text]
    seen.length = 0;
    // Sample 0 holds an image; sample 1 is text-only (no placeholder, no item), same length: no padding.
    const withImage = promptWithImage([1, 4], 3, [6, 8]);
    const textOnly = [1, 4, 9, 10, 11, 6, 8];
    const features = det([3, 6], 1);
    const ids = tf.tensor2d([withImage, textOnly], undefined, 'int32');
    const mixed = tf.tidy(
      () =>
        model
          .forward({ inputIds: ids, media: { image: [[features], []] } })
          .logits?.arraySync() as number[][][],
    );
    expect(relativeError(expected[0]!, expected[1]!)).toBeGreaterThan(1e-4); // the two experts' mix differs
    expect(seen).toHaveLength(1); // one call of the layer's attention-input adapter
    expect(relativeError(seen[0]![0]!, expected[1]!)).toBeLessThan(1e-6);
    expect(relativeError(seen[0]![1]!, expected[0]!)).toBeLessThan(1e-6);
    // The text-only sample's logits are those of a call without any media (router on the text token).
    const alone = tf.tidy(() => {
      const one = tf.tensor2d([textOnly], undefined, 'int32');
      return model.forward({ inputIds: one }).logits?.arraySync() as number[][][];
    });
    expect(relativeError(mixed[1]!.flat(), alone[0]!.flat())).toBeLessThan(1e-5);
    tf.dispose([ids, features]);
    model.dispose();
  });

  it('trains on wasm through the LLM (only the adapter): gradients match finite differences', () => {
    const a = new MMAdapter(MMAdapterConfigSchema.parse(tiny));
    randomizeParameters(a, 5);
    const { model } = tinyComposition(a);
    model.trainOnly(['modalities.image.adapter.*']);
    const features = det([3, 6], 6);
    const { loss, dispose } = compositionLoss(model, features, 3);
    expect(model.trainableParameters().every(([n]) => n.startsWith('modalities.image.adapter.'))).toBe(true);
    expectGradientsMatchFiniteDifferences(model, loss);
    model.dispose();
    dispose();
    features.dispose();
  });

  it('is registered as mm_adapter and checks the LLM depth', async () => {
    const registry = createRegistry();
    register(registry);
    const a = (await registry.create('adapter', {
      type: 'mm_adapter',
      inDim: 8,
      outDim: 16,
      llmLayers: 3,
    })) as MMAdapter;
    expect(a.blockHook.layers(3)).toEqual([0, 1, 2]);
    expect(() => a.blockHook.layers(2)).toThrow(/set llmLayers to 2/);
    expect(a.namedParameters().map(([n]) => n)).toContain('layers.2.adapter_mlp.conv_D.weight');
    a.dispose();
  });
});
