// The AdamW parameter update as one op (optimizers call it per parameter): a fused JS kernel on wasm/cpu,
// the same formula in tfjs ops elsewhere.
import * as tf from '@tensorflow/tfjs-core';
import { type AdamWAttrs, adamwKernel } from './kernels/adamw.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { opPolicy } from './policy.js';

export type AdamWHyper = AdamWAttrs;

/** New [param, expAvg, expAvgSq] after one torch.optim.AdamW step (inputs are not modified). */
export function adamwUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  expAvg: tf.Tensor,
  expAvgSq: tf.Tensor,
  hyper: AdamWHyper,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const { lr, beta1, beta2, eps, weightDecay, step } = hyper;
  if (opPolicy().jsKernels && [param, grad, expAvg, expAvgSq].every((t) => t.dtype === 'float32')) {
    const [p, m, v] = runJsKernel(adamwKernel, { param, grad, expAvg, expAvgSq }, hyper);
    return [p, m, v];
  }
  return tf.tidy(() => {
    const m = tf.add(tf.mul(expAvg, beta1), tf.mul(grad, 1 - beta1));
    const v = tf.add(tf.mul(expAvgSq, beta2), tf.mul(tf.square(grad), 1 - beta2));
    const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(1 - beta2 ** step)), eps);
    const decayed = weightDecay === 0 ? param : tf.mul(param, 1 - lr * weightDecay);
    const p = tf.sub(decayed, tf.mul(tf.div(m, denom), lr / (1 - beta1 ** step)));
    return [p, m, v] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}
