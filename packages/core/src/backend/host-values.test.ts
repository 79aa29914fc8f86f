// Host copies: the values of a tensor made from JS, read once and kept, so later reads need no device read.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostRows, hostValues } from './host-values.js';
import { initBackend } from './init.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('hostValues', () => {
  it('returns the values, once read the same copy, also after kernels used the tensor', () => {
    const ids = tf.tensor2d(
      [
        [1, 2, 3],
        [4, 5, -100],
      ],
      undefined,
      'int32',
    );
    const first = hostValues(ids);
    expect(Array.from(first)).toEqual([1, 2, 3, 4, 5, -100]);
    tf.tidy(() => tf.add(ids, 1).dataSync());
    expect(hostValues(ids)).toBe(first);
    expect(hostRows(ids)).toEqual([
      [1, 2, 3],
      [4, 5, -100],
    ]);
    ids.dispose();
  });

  it('keeps one copy per tensor object (a clone is read on its own)', () => {
    const a = tf.tensor1d([7, 8], 'int32');
    const b = tf.clone(a);
    expect(hostValues(b)).not.toBe(hostValues(a));
    expect(Array.from(hostValues(b))).toEqual([7, 8]);
    tf.dispose([a, b]);
  });
});
