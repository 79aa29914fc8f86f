import * as tf from '@tensorflow/tfjs-core';

/**
 * torch.nn.utils.clip_grad_norm_ (L2): scales every gradient by min(1, maxNorm / (norm + 1e-6)) where norm is
 * the global L2 norm. Returns new tensors (inputs are not disposed) and the pre-clip norm.
 */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: number } {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  const out = new Map<string, tf.Tensor>();
  // Below the threshold torch multiplies by exactly 1: a clone is the same values without the pass.
  for (const [name, g] of grads) out.set(name, coef === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, coef)));
  return { grads: out, norm };
}

/** Global L2 norm over all gradients (one device read). */
export function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): number {
  if (grads.size === 0) return 0;
  const sq = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))));
  const total = sq.dataSync()[0];
  sq.dispose();
  return Math.sqrt(total);
}

/** Disposes every tensor of a gradient map and empties it. */
export function disposeGradients(grads: Map<string, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
  grads.clear();
}
