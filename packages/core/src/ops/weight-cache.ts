// Wᵀ of linear weights whose values are not changing, kept between calls (see OpPolicy.cacheTransposedWeights).
import * as tf from '@tensorflow/tfjs-core';
import { opPolicy } from './policy.js';

interface Entry {
  dataId: object;
  transposed: tf.Tensor;
}
const cache = new Map<tf.Variable, Entry>();

function dropDisposedWeights(): void {
  for (const [weight, entry] of cache) {
    if (weight.isDisposed) {
      entry.transposed.dispose();
      cache.delete(weight);
    }
  }
}

/**
 * Wᵀ: cached for a variable that is frozen, or used outside a gradient tape (inference); else a fresh
 * transpose that the caller owns (`fresh`: dispose it once used).
 */
export function transposedWeight(weight: tf.Tensor2D): { transposed: tf.Tensor2D; fresh: boolean } {
  const cacheable =
    weight instanceof tf.Variable &&
    opPolicy().cacheTransposedWeights &&
    !(weight.trainable && tf.engine().isTapeOn());
  if (!cacheable) return { transposed: tf.transpose(weight), fresh: true };
  const hit = cache.get(weight);
  if (hit && hit.dataId === weight.dataId && !hit.transposed.isDisposed)
    return { transposed: hit.transposed as tf.Tensor2D, fresh: false };
  if (hit) hit.transposed.dispose(); // the variable was assigned new values
  dropDisposedWeights();
  const transposed = tf.keep(tf.transpose(weight));
  cache.set(weight, { dataId: weight.dataId, transposed });
  return { transposed, fresh: false };
}

/** Frees every cached Wᵀ (they count in tf.memory() until then); returns how many were freed. */
export function clearTransposedWeightCache(): number {
  const n = cache.size;
  for (const entry of cache.values()) entry.transposed.dispose();
  cache.clear();
  return n;
}
