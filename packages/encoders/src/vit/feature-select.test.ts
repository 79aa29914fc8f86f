// Vision feature-layer selection (LLaVA vision_feature_layer / vision_feature_select_strategy) on a real CLIP
// tower, against its full HF-style hidden_states: negative indices count from the end, a list of layers is
// concatenated on the feature axis in the order given, 'default' drops the CLS row and 'full' keeps it.
import { createRegistry, encodeAndSelect, initBackend, tf } from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../index.js';
import type { VisionTransformer } from './model.js';

let tower: VisionTransformer;
let pixels: tf.Tensor4D;
let all: tf.Tensor3D[];

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  const r = createRegistry();
  register(r);
  tower = (await r.create('encoder', {
    type: 'clip_vision',
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 3,
    num_attention_heads: 2,
    image_size: 8,
    patch_size: 4,
    seed: 11,
  })) as VisionTransformer;
  pixels = tf.randomNormal([2, 3, 8, 8], 0, 1, 'float32', 5) as tf.Tensor4D;
  all = tower.forwardAll(pixels).hiddenStates; // [embeddings, layer 1, layer 2, layer 3], each [2, 1 + 4, 8]
});
afterAll(() => {
  tf.dispose([pixels, ...all]);
  tower.dispose();
});

const rows = (t: tf.Tensor) => t.arraySync() as number[][][];

describe('vision feature-layer selection', () => {
  it('negative indices count from the end of hidden_states (-1 = last layer, -4 = embeddings)', () => {
    for (const [index, expected] of [
      [-1, 3],
      [-2, 2],
      [-4, 0],
      [0, 0],
    ] as const) {
      const { features, layout } = encodeAndSelect(tower, pixels, { layer: index, strategy: 'full' });
      expect(features.shape).toEqual([2, 5, 8]);
      expect(layout).toMatchObject({ tokens: 5, prefixTokens: 1 });
      expect(rows(features)).toEqual(rows(all[expected]));
      features.dispose();
    }
    expect(() => encodeAndSelect(tower, pixels, { layer: -5, strategy: 'full' })).toThrow(
      /hidden state index -5 is out of range for 3 layers \(use 0\.\.3 or -4\.\.-1; check vision_feature_layer\)/,
    );
  });

  it('a list of layers is concatenated on the feature axis in the order given', () => {
    const { features } = encodeAndSelect(tower, pixels, { layer: [-1, 1], strategy: 'full' });
    expect(features.shape).toEqual([2, 5, 16]);
    const want = tf.concat([all[3], all[1]], -1);
    expect(rows(features)).toEqual(rows(want));
    tf.dispose([features, want]);
  });

  it("'default' drops the CLS row, 'full' keeps it; both over a list of layers", () => {
    const full = encodeAndSelect(tower, pixels, { layer: [-2, -1], strategy: 'full' });
    const dflt = encodeAndSelect(tower, pixels, { layer: [-2, -1], strategy: 'default' });
    expect(dflt.features.shape).toEqual([2, 4, 16]);
    expect(dflt.layout).toMatchObject({ tokens: 4, prefixTokens: 0 });
    const withoutCls = tf.slice(full.features, [0, 1, 0], [-1, -1, -1]);
    expect(rows(dflt.features)).toEqual(rows(withoutCls));
    expect(rows(full.features)[0][0].slice(0, 8)).toEqual(rows(all[2])[0][0]); // the CLS row of layer 2
    tf.dispose([full.features, dflt.features, withoutCls]);
  });
});
