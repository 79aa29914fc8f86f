// LISA's mask losses (model/LISA.py `sigmoid_ce_loss`, `dice_loss`): both computed per mask over its pixels,
// then averaged over the masks of the batch.
import { tf } from '@vistune/core';

export interface DiceOptions {
  /**
   * LISA divides σ(x) and the target by `scale` before summing (default 1000) and adds `eps` (default 1e-6)
   * to numerator and denominator. scale 1, eps 1 gives the Mask2Former/OneFormer form (2Σpy + 1) / (Σp + Σy + 1).
   */
  scale?: number;
  eps?: number;
}

/** Flattens [K, ...pixels] to [K, P]. */
const perMask = (x: tf.Tensor): tf.Tensor2D => tf.reshape(x, [x.shape[0] as number, -1]);

/**
 * Mean over masks of the mean over pixels of BCE-with-logits: softplus(x) − x·y, whose gradient is exactly
 * σ(x) − y (no |x| kink at 0, unlike the max/abs form).
 */
export function sigmoidBceLoss(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const x = perMask(logits);
    const y = perMask(targets);
    return tf.mean(tf.mean(tf.sub(tf.softplus(x), tf.mul(x, y)), 1)) as tf.Scalar;
  });
}

/** Mean over masks of 1 − (2Σ(σ(x)/s·y) + ε) / (Σσ(x)/s + Σy/s + ε). */
export function diceLoss(logits: tf.Tensor, targets: tf.Tensor, opts: DiceOptions = {}): tf.Scalar {
  const scale = opts.scale ?? 1000;
  const eps = opts.eps ?? 1e-6;
  return tf.tidy(() => {
    const p = tf.div(tf.sigmoid(perMask(logits)), scale);
    const y = perMask(targets);
    const numerator = tf.add(tf.mul(2, tf.sum(tf.mul(p, y), 1)), eps);
    const denominator = tf.add(tf.add(tf.sum(p, 1), tf.sum(tf.div(y, scale), 1)), eps);
    return tf.mean(tf.sub(1, tf.div(numerator, denominator))) as tf.Scalar;
  });
}
