// Wᵀ of linear weights whose values are not changing, kept between calls (see OpPolicy.cacheTransposedWeights).
import * as tf from '@tensorflow/tfjs-core';
import { transposeLast2 } from './matmul.js';
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

/** Whether transposedWeight would transpose afresh (a weight being trained, or not a variable). */
export function needsFreshTranspose(weight: tf.Tensor2D): boolean {
  return !(
    weight instanceof tf.Variable &&
    opPolicy().cacheTransposedWeights &&
    !(weight.trainable && tf.engine().isTapeOn())
  );
}

/**
 * Wᵀ: cached for a variable that is frozen, or used outside a gradient tape (inference); else a fresh
 * transpose that the caller owns (`fresh`: dispose it once used).
 */
export function transposedWeight(weight: tf.Tensor2D): { transposed: tf.Tensor2D; fresh: boolean } {
  if (!(weight instanceof tf.Variable) || needsFreshTranspose(weight))
    return { transposed: transposeLast2(weight) as tf.Tensor2D, fresh: true };
  const hit = cache.get(weight);
  if (hit && hit.dataId === weight.dataId && !hit.transposed.isDisposed)
    return { transposed: hit.transposed as tf.Tensor2D, fresh: false };
  if (hit) hit.transposed.dispose(); // the variable was assigned new values
  dropDisposedWeights();
  const transposed = tf.keep(transposeLast2(weight)) as tf.Tensor2D;
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
