// Normalisations over the last axis with hand-written gradients: tfjs's autodiff of the same formulas
// runs ~3× as many kernels (mean, square, rsqrt, broadcasts), each a pass over the activations.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { columnSumKernel } from './kernels/column-sum.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { opPolicy } from './policy.js';

/** Sums a [..., D] tensor over every axis but the last → [D] (the gradient of a broadcast [D] weight). */
export function sumToLastAxis(t: tf.Tensor): tf.Tensor {
  if (opPolicy().jsKernels && t.dtype === 'float32')
    return runJsKernel(columnSumKernel, { x: t }, {})[0] as tf.Tensor;
  return tf.sum(tf.reshape(t, [-1, t.shape[t.rank - 1]]), 0);
}

const rmsNormWithEps = (eps: number) =>
  customGrad(([x, weight]: [tf.Tensor, tf.Tensor], save) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)); // [..., 1]
    save([x, weight, r]);
    return {
      value: tf.mul(tf.mul(x, r), weight),
      gradFunc: (dy, [sx, sw, sr]) => {
        // y = x·r·w with r = (mean(x²)+eps)^-½  ⇒  dx = r·g − x·r³·mean(g·x), g = dy·w
        const g = tf.mul(dy, sw);
        const gx = tf.mean(tf.mul(g, sx), -1, true);
        const dx = tf.sub(tf.mul(g, sr), tf.mul(sx, tf.mul(tf.pow(sr, 3), gx)));
        return [dx, sumToLastAxis(tf.mul(dy, tf.mul(sx, sr)))];
      },
    };
  });

/** LLaMA RMSNorm: x / sqrt(mean(x²) + eps) * weight, over the last axis. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return rmsNormWithEps(eps)(x, weight);
}

const layerNormWithEps = (eps: number) =>
  customGrad(([x, weight, bias]: [tf.Tensor, tf.Tensor, tf.Tensor], save) => {
    const { mean, variance } = tf.moments(x, -1, true);
    const r = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(x, mean), r);
    save([xhat, r, weight]);
    return {
      value: tf.add(tf.mul(xhat, weight), bias),
      gradFunc: (dy, [sxhat, sr, sw]) => {
        // dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w
        const g = tf.mul(dy, sw);
        const centred = tf.sub(g, tf.mean(g, -1, true));
        const dx = tf.mul(sr, tf.sub(centred, tf.mul(sxhat, tf.mean(tf.mul(g, sxhat), -1, true))));
        return [dx, sumToLastAxis(tf.mul(dy, sxhat)), sumToLastAxis(dy)];
      },
    };
  });

/** LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor {
  return layerNormWithEps(eps)(x, weight, bias);
}
