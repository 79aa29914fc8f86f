import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { llavaCheckpointName, parseLlavaConfig } from './llava.js';
import { applyFeatureSelect, selectedFeatureDim, selectedLayout } from './select.js';

const textConfig = {
  model_type: 'llama',
  vocab_size: 100,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  rms_norm_eps: 1e-5,
};

describe('parseLlavaConfig', () => {
  it('applies the LlavaConfig defaults and reads text_config through the decoder parser', () => {
    const c = parseLlavaConfig({
      model_type: 'llava',
      text_config: textConfig,
      vision_config: { hidden_size: 4 },
    });
    expect(c.imageTokenId).toBe(32000);
    expect(c.select).toEqual({ layer: -2, strategy: 'default' });
    expect(c.projectorHiddenAct).toBe('gelu');
    expect(c.projectorBias).toBe(true);
    expect(c.vision.model_type).toBe('clip_vision_model');
    expect(c.text.hiddenSize).toBe(8);
    expect(c.heads).toEqual([]);
  });

  it('accepts image_token_id, layer lists and "full"; names the file and field when invalid', () => {
    const c = parseLlavaConfig({
      image_token_id: 151646,
      vision_feature_layer: [-3, -1],
      vision_feature_select_strategy: 'full',
      text_config: textConfig,
      vision_config: { model_type: 'siglip_vision_model' },
    });
    expect(c.imageTokenId).toBe(151646);
    expect(c.select).toEqual({ layer: [-3, -1], strategy: 'full' });
    expect(() =>
      parseLlavaConfig(
        { text_config: textConfig, vision_config: {}, vision_feature_select_strategy: 'cls' },
        'dir/config.json',
      ),
    ).toThrow(/dir\/config.json is not a LLaVA config:\n {2}vision_feature_select_strategy: /);
  });
});

describe('llavaCheckpointName', () => {
  it('maps composition names to legacy and new HF names, and refuses what LLaVA cannot hold', () => {
    expect(llavaCheckpointName('llm.model.layers.0.mlp.up_proj.weight')).toBe(
      'language_model.model.layers.0.mlp.up_proj.weight',
    );
    expect(llavaCheckpointName('llm.lm_head.weight')).toBe('language_model.lm_head.weight');
    expect(llavaCheckpointName('llm.lm_head.weight', 'new')).toBe('lm_head.weight');
    expect(llavaCheckpointName('llm.model.norm.weight', 'new')).toBe('model.language_model.norm.weight');
    expect(llavaCheckpointName('modalities.image.encoder.vision_model.post_layernorm.bias')).toBe(
      'vision_tower.vision_model.post_layernorm.bias',
    );
    expect(llavaCheckpointName('modalities.image.adapter.linear_1.weight', 'new')).toBe(
      'model.multi_modal_projector.linear_1.weight',
    );
    expect(llavaCheckpointName('heads.seg.proj.weight')).toBe('heads.seg.proj.weight');
    expect(llavaCheckpointName('heads.seg.proj.weight', 'new')).toBe('heads.seg.proj.weight');
    expect(() => llavaCheckpointName('modalities.audio.encoder.conv.weight')).toThrow(
      /no place in a LLaVA checkpoint/,
    );
  });
});

describe('feature selection', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it("'default' drops the prefix tokens, 'full' keeps them, layer lists concatenate on the feature axis", () => {
    const layout = { tokens: 5, prefixTokens: 1, grid: [2, 2] as const };
    expect(selectedLayout(layout, { layer: -1, strategy: 'full' })).toBe(layout);
    expect(selectedLayout(layout, { layer: -1, strategy: 'default' })).toEqual({
      tokens: 4,
      prefixTokens: 0,
      grid: [2, 2],
    });
    expect(selectedFeatureDim(6, { layer: [-2, -1, 0], strategy: 'full' })).toBe(18);
    const a = tf.tensor3d([
      [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
        [9, 10],
      ],
    ]);
    const b = tf.tensor3d([
      [
        [-1, -2],
        [-3, -4],
        [-5, -6],
        [-7, -8],
        [-9, -10],
      ],
    ]);
    const full = applyFeatureSelect({ hiddenStates: [a, b], layout }, { layer: [0, 1], strategy: 'full' });
    expect(full.features.arraySync()[0][0]).toEqual([1, 2, -1, -2]);
    const dropped = applyFeatureSelect(
      { hiddenStates: [a, b], layout },
      { layer: [0, 1], strategy: 'default' },
    );
    expect(dropped.features.shape).toEqual([1, 4, 4]);
    expect(dropped.features.arraySync()[0][0]).toEqual([3, 4, -3, -4]);
    expect(() =>
      applyFeatureSelect({ hiddenStates: [a], layout }, { layer: [0, 1], strategy: 'full' }),
    ).toThrow(/one tensor per requested index/);
    tf.dispose([a, b, full.features, dropped.features]);
  });
});
