import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { cachedMediaLoader } from './media-cache.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

describe('cachedMediaLoader', () => {
  const counting = () => {
    const calls: string[] = [];
    const load = async (kind: string, path: string) => {
      calls.push(`${kind}:${path}`);
      return tf.tensor([path.length, calls.length, 3], [3]);
    };
    return { calls, load };
  };

  it('decodes each (kind, path) once and returns a fresh tensor with the first values each time', async () => {
    const { calls, load } = counting();
    const cache = cachedMediaLoader(load, { maxBytes: 1024 });
    const a = await cache.load('image', 'a.png');
    a.dispose(); // the caller owns what it gets: disposing it must not touch the cache
    const again = await cache.load('image', 'a.png');
    expect(Array.from(await again.data())).toEqual([5, 1, 3]);
    const other = await cache.load('video', 'a.png');
    expect(calls).toEqual(['image:a.png', 'video:a.png']);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 2, uncached: 0, bytes: 24 });
    tf.dispose([again, other]);
  });

  it('stops keeping items at maxBytes, skips kinds that are not cacheable, and 0 turns it off', async () => {
    const full = counting();
    const small = cachedMediaLoader(full.load, { maxBytes: 12 });
    for (const p of ['a', 'b', 'a', 'b']) (await small.load('image', p)).dispose();
    expect(full.calls).toEqual(['image:a', 'image:b', 'image:b']);
    expect(small.stats).toMatchObject({ hits: 1, uncached: 2 });

    const random = counting();
    const video = cachedMediaLoader(random.load, { maxBytes: 1024, cacheable: (kind) => kind !== 'video' });
    for (let i = 0; i < 2; i++) (await video.load('video', 'v.mp4')).dispose();
    expect(random.calls).toEqual(['video:v.mp4', 'video:v.mp4']);

    const off = counting();
    const none = cachedMediaLoader(off.load, { maxBytes: 0 });
    for (let i = 0; i < 2; i++) (await none.load('image', 'a')).dispose();
    expect(off.calls).toHaveLength(2);
  });
});
