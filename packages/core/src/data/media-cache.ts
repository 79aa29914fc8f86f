// Decoded media kept in memory between epochs: a training run reads each image several times (several records per
// image, several epochs), and each decode + preprocess costs ~3 ms of CPU (a 96×32 PNG through sharp and the CLIP
// processor), time the second core could spend on other work.
import * as tf from '@tensorflow/tfjs-core';
import type { MediaLoader } from './loader.js';

export interface MediaCacheOptions {
  /** Bytes of decoded values kept at most; items past it are decoded every time (0 turns the cache off). */
  maxBytes: number;
  /** Kinds whose items may be cached (default all): a loader that samples at random (video frames) must say no. */
  cacheable?: (kind: string) => boolean;
}

/** What the cache did so far. */
export interface MediaCacheStats {
  hits: number;
  misses: number;
  /** Items decoded but not kept because the cache was full. */
  uncached: number;
  bytes: number;
}

interface CachedItem {
  values: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: tf.DataType;
}

/**
 * `load` with its results kept by (kind, path) up to `maxBytes`; each call returns a new tensor the caller owns,
 * with the values the first decode produced. Loaders must be deterministic for cacheable kinds.
 */
export function cachedMediaLoader(
  load: MediaLoader,
  opts: MediaCacheOptions,
): { load: MediaLoader; stats: MediaCacheStats } {
  const items = new Map<string, CachedItem>();
  const stats: MediaCacheStats = { hits: 0, misses: 0, uncached: 0, bytes: 0 };
  const cached: MediaLoader = async (kind, path) => {
    if (opts.maxBytes <= 0 || opts.cacheable?.(kind) === false) return load(kind, path);
    const key = `${kind}\u0000${path}`;
    const hit = items.get(key);
    if (hit) {
      stats.hits++;
      return tf.tensor(hit.values, hit.shape, hit.dtype);
    }
    stats.misses++;
    const tensor = await load(kind, path);
    const bytes = tensor.size * 4;
    if (stats.bytes + bytes > opts.maxBytes || tensor.dtype === 'string' || tensor.dtype === 'complex64') {
      stats.uncached++;
      return tensor;
    }
    // Read asynchronously: a GPU backend forbids synchronous reads.
    const values = (await tensor.data()) as CachedItem['values'];
    items.set(key, { values, shape: [...tensor.shape], dtype: tensor.dtype });
    stats.bytes += bytes;
    return tensor;
  };
  return { load: cached, stats };
}
