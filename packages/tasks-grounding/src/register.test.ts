import { createRegistry, initBackend, type ModalityEncoder, tf } from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RegionProjector } from './region/region-adapter.js';
import { RegionEncoder } from './region/region-encoder.js';
import { register } from './register.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('register', () => {
  it('adds the codecs, metrics and the region encoder/adapter', () => {
    const registry = createRegistry();
    register(registry);
    const names = (kind: 'codec' | 'metric' | 'encoder' | 'adapter') =>
      registry.list(kind).map((e) => e.name);
    expect(names('codec')).toEqual(['kosmos2', 'minigpt_v2', 'qwen_vl', 'shikra']);
    expect(names('metric')).toEqual(expect.arrayContaining(['detection_map', 'mask_iou', 'rec_accuracy']));
    expect(names('encoder')).toContain('region_roi_align');
    expect(names('adapter')).toContain('region_mlp');
  });

  it('builds a region encoder around a tower created from its own config, and a matching adapter', async () => {
    const registry = createRegistry();
    registerEncoders(registry);
    register(registry);
    const encoder = (await registry.create('encoder', {
      type: 'region_roi_align',
      vision: {
        type: 'clip_vision',
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        image_size: 16,
        patch_size: 4,
      },
      outputSize: 3,
    })) as ModalityEncoder;
    expect(encoder).toBeInstanceOf(RegionEncoder);
    expect(encoder.namedParameters().map(([n]) => n)).toContain(
      'vision.vision_model.embeddings.patch_embedding.weight',
    );
    const item = tf.concat([tf.zeros([3 * 16 * 16]), tf.tensor1d([0, 0, 8, 8, 4, 4, 16, 12])]);
    expect(encoder.featureLayout(item.shape)).toEqual({
      tokens: 18,
      prefixTokens: 0,
      grid: [3, 3],
      frames: 2,
    });
    const out = encoder.forward(tf.stack([item]), { hiddenStates: [-1] });
    expect(out.hiddenStates[0].shape).toEqual([1, 18, 8]);
    const adapter = registry.createSync('adapter', {
      type: 'region_mlp',
      inDim: 8,
      outDim: 12,
      outputSize: 3,
      slots: 2,
    }) as RegionProjector;
    expect(adapter.numSlots(out.layout)).toBe(4);
    expect(adapter.forward(out.hiddenStates[0], { layout: out.layout }).shape).toEqual([1, 4, 12]);
    const mismatched = registry.createSync('adapter', {
      type: 'region_mlp',
      inDim: 8,
      outDim: 12,
      outputSize: 2,
    }) as RegionProjector;
    expect(() => mismatched.numSlots(out.layout)).toThrow(/outputSize/);
    tf.dispose([item, ...out.hiddenStates]);
    encoder.dispose();
    adapter.dispose();
    mismatched.dispose();
  });
});
