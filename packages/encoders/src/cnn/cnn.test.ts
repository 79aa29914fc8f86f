import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCnnVisionConfig } from './config.js';
import { CnnVisionEncoder } from './model.js';

beforeAll(async () => {
  await initBackend({ quiet: true });
});

describe('cnn_vision', () => {
  it('each stage equals tf.conv2d with PyTorch padding 1, stride 2, then GELU', () => {
    const tower = new CnnVisionEncoder(
      parseCnnVisionConfig({ hidden_sizes: [5], patch_size: 2, hidden_size: 4 }),
      {
        seed: 3,
      },
    );
    const stage = tower.vision_model.stages[0];
    const x = tf.randomNormal([2, 6, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const ours = stage.forward(x, 'NHWC');
    const fromChannelsFirst = stage.forward(tf.transpose(x, [0, 3, 1, 2]) as tf.Tensor4D, 'NCHW');
    expect(Array.from(fromChannelsFirst.dataSync())).toEqual(Array.from(ours.dataSync()));
    const filter = tf.transpose(stage.weight, [2, 3, 1, 0]) as tf.Tensor4D;
    const conv = tf.conv2d(x, filter, 2, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const pre = tf.add(conv, stage.bias);
    const reference = tf.mul(tf.mul(pre, 0.5), tf.add(1, tf.erf(tf.div(pre, Math.SQRT2))));
    expect(ours.shape).toEqual([2, 3, 4, 5]);
    const diff = tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0] as number;
    expect(diff).toBeLessThan(1e-4);
    tower.dispose();
  });

  it('one token per patch_size cell of any H×W; other sizes and layers are refused by name', () => {
    const tower = new CnnVisionEncoder(
      parseCnnVisionConfig({ hidden_sizes: [4, 8], patch_size: 8, hidden_size: 6 }),
    );
    const out = tower.forward(tf.zeros([2, 3, 16, 24]) as tf.Tensor4D);
    expect(out.layout).toEqual({ tokens: 6, prefixTokens: 0, grid: [2, 3] });
    expect(out.hiddenStates[0]?.shape).toEqual([2, 6, 6]);
    expect(() => tower.featureLayout([3, 12, 16])).toThrow(/multiples of patch_size 8/);
    expect(() => tower.forward(tf.zeros([1, 3, 8, 8]) as tf.Tensor4D, { hiddenStates: [1] })).toThrow(
      /select layer -1/,
    );
    expect(() => parseCnnVisionConfig({ hidden_sizes: [4, 8, 8], patch_size: 4 })).toThrow(
      /patch_size 4 is not a multiple of 2\^3/,
    );
    expect(tower.namedParameters().map(([n]) => n)).toEqual([
      'vision_model.stages.0.conv.weight',
      'vision_model.stages.0.conv.bias',
      'vision_model.stages.1.conv.weight',
      'vision_model.stages.1.conv.bias',
      'vision_model.projection.weight',
      'vision_model.projection.bias',
      'vision_model.post_layernorm.weight',
      'vision_model.post_layernorm.bias',
    ]);
    tower.dispose();
  });
});
