// Activation functions by HF config name.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';

/** GELU, exact erf form (HF "gelu"). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}
/** GELU, tanh approximation (HF "gelu_pytorch_tanh", SigLIP). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}
/** x * sigmoid(1.702 x) (HF "quick_gelu", OpenAI CLIP). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}
/** x * sigmoid(x) (HF "silu"). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

export type ActivationName = 'gelu' | 'gelu_pytorch_tanh' | 'gelu_new' | 'quick_gelu' | 'silu' | 'relu';
export function activation(name: ActivationName | string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast':
      return geluTanh;
    case 'quick_gelu':
      return quickGelu;
    case 'silu':
    case 'swish':
      return silu;
    case 'relu':
      return tf.relu;
    default:
      throw new Error(
        `Unknown activation "${name}": use one of gelu, gelu_pytorch_tanh, quick_gelu, silu, relu`,
      );
  }
}

/**
 * SwiGLU's gate: silu(gate) · up, saving only gate and up for the backward (tfjs's autodiff of the same
 * chain keeps sigmoid(gate), silu(gate) and both products alive: three more [tokens, intermediate] tensors).
 * dgate = dy·up·σ(g)·(1 + g·(1 − σ(g))), dup = dy·silu(g).
 */
const siluTimesWithGrad = customGrad(([gate, up]: [tf.Tensor, tf.Tensor], save) => {
  save([gate, up]);
  return {
    value: tf.mul(silu(gate), up),
    gradFunc: (dy, [g, u]) => {
      const s = tf.sigmoid(g);
      const dsilu = tf.mul(s, tf.add(tf.mul(g, tf.sub(1, s)), 1));
      return [tf.mul(tf.mul(dy, u), dsilu), tf.mul(dy, tf.mul(g, s))];
    },
  };
});

/** silu(gate) · up (LLaMA's MLP before down_proj); gate and up of the same shape. */
export function siluTimes(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (!tf.util.arraysEqual(gate.shape, up.shape))
    throw new Error(`siluTimes: gate [${gate.shape}] and up [${up.shape}] must have the same shape`);
  if (!tf.engine().isTapeOn()) return tf.mul(silu(gate), up);
  return siluTimesWithGrad(gate, up);
}
