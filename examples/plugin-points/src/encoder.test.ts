import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { PointPoolAdapter, pointPoolSchema } from './adapter.js';
import { groupAnchors, groupMaxPool, PointMlpEncoder, pointMlpSchema } from './encoder.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

/** The same pooling with tf's own ops (features × one-hot mask, max over points) and tf's own gradient. */
function referencePool(features: tf.Tensor3D, group: Int32Array, groups: number): tf.Tensor3D {
  const [N, P, H] = features.shape;
  const mask = tf.reshape(tf.oneHot(tf.tensor1d(group, 'int32'), groups), [N, P, groups, 1]);
  return tf.max(tf.mul(tf.reshape(features, [N, P, 1, H]), mask), 1) as tf.Tensor3D;
}

describe('groupMaxPool', () => {
  it('equals the masked max of tf ops, value and gradient', () => {
    const [N, P, H, K] = [2, 7, 3, 3];
    // Distinct positive values: with ties tf splits the gradient among them, groupMaxPool gives it to one.
    const features = tf.add(tf.abs(tf.randomNormal([N, P, H], 0, 1, 'float32', 7)), 0.1) as tf.Tensor3D;
    // Group 2 of item 1 stays empty: its tokens must be 0 with no gradient.
    const group = Int32Array.from([0, 1, 2, 0, 1, 2, 2, 0, 0, 1, 1, 0, 1, 0]);
    const weights = tf.randomNormal([N, K, H], 0, 1, 'float32', 3);
    const loss = (pool: (x: tf.Tensor3D) => tf.Tensor3D) => (x: tf.Tensor) =>
      tf.sum(tf.mul(pool(x as tf.Tensor3D), weights));
    const ours = (x: tf.Tensor3D) => groupMaxPool(x, group, K);
    const theirs = (x: tf.Tensor3D) => referencePool(x, group, K);
    expect(ours(features).arraySync()).toEqual(theirs(features).arraySync());
    expect((ours(features).arraySync() as number[][][])[1][2]).toEqual([0, 0, 0]);
    const a = tf.grad(loss(ours))(features).arraySync() as number[][][];
    const b = tf.grad(loss(theirs))(features).arraySync() as number[][][];
    a.flat(2).forEach((v, i) => {
      expect(v).toBeCloseTo(b.flat(2)[i], 6);
    });
  });
});

describe('point_mlp', () => {
  const config = pointMlpSchema.parse({ hidden_size: 16, num_layers: 3, groups: 8, seed: 5 });

  it('spreads unit anchors over the sphere', () => {
    const a = groupAnchors(8);
    for (let k = 0; k < 8; k++) expect(Math.hypot(a[k], a[8 + k], a[16 + k])).toBeCloseTo(1, 6);
    // Evenly spread: the anchors' mean is near the centre.
    const mean = [0, 1, 2].map((c) => a.slice(c * 8, c * 8 + 8).reduce((s, v) => s + v, 0) / 8);
    for (const m of mean) expect(Math.abs(m)).toBeLessThan(0.15);
  });

  it('turns [N, P, 6] into one [N, groups, hidden] tensor per requested layer', () => {
    const encoder = new PointMlpEncoder(config);
    const batch = tf.randomUniform([3, 32, 6], -1, 1, 'float32', 1);
    const out = encoder.forward(batch, { hiddenStates: [0, -1] });
    expect(out.layout).toEqual({ tokens: 8, prefixTokens: 0 });
    expect(out.hiddenStates.map((h) => h.shape)).toEqual([
      [3, 8, 16],
      [3, 8, 16],
    ]);
    expect(encoder.numHiddenStates).toBe(3);
    expect(() => encoder.forward(batch, { hiddenStates: [3] })).toThrow(/hidden state index out of range/);
  });

  it('ignores the order of the points (max-pooling within direction groups)', () => {
    const encoder = new PointMlpEncoder(config);
    const points = tf.randomUniform([1, 40, 6], -1, 1, 'float32', 2);
    const shuffled = tf.gather(
      points,
      tf.tensor1d(Array.from(tf.util.createShuffledIndices(40)), 'int32'),
      1,
    );
    const a = encoder.forward(points).hiddenStates[0].arraySync() as number[][][];
    const b = encoder.forward(shuffled).hiddenStates[0].arraySync() as number[][][];
    a.flat(2).forEach((v, i) => {
      expect(v).toBeCloseTo(b.flat(2)[i], 5);
    });
  });

  it('refuses items whose channels do not match in_channels, naming the fix', () => {
    const encoder = new PointMlpEncoder(config);
    expect(() => encoder.featureLayout([128, 3])).toThrow(/\[points, 6\].*colour: true → 6/);
  });
});

describe('point_pool', () => {
  it('averages runs of `pool` tokens into slots of the LLM width', () => {
    const adapter = new PointPoolAdapter(pointPoolSchema.parse({ inDim: 16, outDim: 24, pool: 2 }));
    const layout = { tokens: 8, prefixTokens: 0 };
    expect(adapter.numSlots(layout)).toBe(4);
    expect(adapter.forward(tf.randomNormal([2, 8, 16]) as tf.Tensor3D, { layout }).shape).toEqual([2, 4, 24]);
    // Pooling happens first: two tokens with the same mean give the same slot.
    const pairs = tf.tensor3d([
      [
        [1, ...Array(15).fill(0)],
        [3, ...Array(15).fill(0)],
        [2, ...Array(15).fill(0)],
        [2, ...Array(15).fill(0)],
      ],
    ]);
    const slots = adapter
      .forward(pairs, { layout: { tokens: 4, prefixTokens: 0 } })
      .arraySync() as number[][][];
    slots[0][0].forEach((v, i) => {
      expect(v).toBeCloseTo(slots[0][1][i], 5);
    });
  });

  it('refuses a pool that does not divide the token count', () => {
    const adapter = new PointPoolAdapter(pointPoolSchema.parse({ inDim: 4, outDim: 4, pool: 3 }));
    expect(() => adapter.numSlots({ tokens: 8, prefixTokens: 0 })).toThrow(
      /pool 3 does not divide the encoder's 8 tokens/,
    );
  });
});
