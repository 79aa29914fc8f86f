// The op layer: every model calls these instead of raw tf ops, so backend knowledge lives here once.
// FIRST VERSION (contract): correct but unoptimised. Owner of ops/ replaces bodies, keeps signatures.
import * as tf from '@tensorflow/tfjs-core';

/** a @ b with optional transposes; a: [..., M, K], b: [..., K, N]. */
export function matmul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  return tf.matMul(a, b, transposeA, transposeB);
}

/** y = x W^T + b with HF's [out, in] weight layout; x: [..., in] → [..., out]. */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(tf.reshape(x, [-1, inDim]), weight, false, true);
  const out = bias ? tf.add(y, bias) : y;
  return tf.reshape(out, [...lead, weight.shape[0]]);
}

/** LLaMA RMSNorm: x / sqrt(mean(x²) + eps) * weight, over the last axis. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight);
}

/** LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
}

export interface AttentionOptions {
  /** Causal mask; with queryOffset the query i sits at absolute position queryOffset + i (KV-cache decode). */
  causal?: boolean;
  queryOffset?: number;
  /** Key padding mask [B, S]: 1 = attend, 0 = padding. */
  keyMask?: tf.Tensor2D;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
}

/** Scaled dot-product attention. q: [B, H, T, D], k/v: [B, Hkv, S, D] with H % Hkv == 0 (GQA) → [B, H, T, D]. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions = {}): tf.Tensor4D {
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const rep = H / Hkv;
  const kk = rep === 1 ? k : tf.reshape(tf.tile(tf.reshape(k, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  const vv = rep === 1 ? v : tf.reshape(tf.tile(tf.reshape(v, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  let scores = tf.mul(tf.matMul(q, kk, false, true), scale) as tf.Tensor4D;
  const big = -1e9;
  if (opts.causal) {
    const off = opts.queryOffset ?? S - T;
    const qi = tf.reshape(tf.add(tf.range(0, T, 1, 'int32'), off), [T, 1]);
    const kj = tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]);
    const allowed = tf.lessEqual(kj, qi);
    scores = tf.where(tf.broadcastTo(allowed, scores.shape), scores, tf.fill(scores.shape, big)) as tf.Tensor4D;
  }
  if (opts.keyMask) {
    const keep = tf.reshape(tf.cast(opts.keyMask, 'bool'), [B, 1, 1, S]);
    scores = tf.where(tf.broadcastTo(keep, scores.shape), scores, tf.fill(scores.shape, big)) as tf.Tensor4D;
  }
  return tf.matMul(tf.softmax(scores), vv) as tf.Tensor4D;
}

/** Mean cross-entropy over positions whose label != ignoreIndex. logits: [N, V], labels: int32 [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, ignoreIndex = -100): tf.Scalar {
  const valid = tf.notEqual(labels, ignoreIndex);
  const safe = tf.where(valid, labels, tf.zerosLike(labels));
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(safe, logits.shape[1])), -1);
  const w = tf.cast(valid, 'float32');
  return tf.div(tf.neg(tf.sum(tf.mul(picked, w))), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
}

/** Rows of table [V, D] at ids (int32, any shape) → [...ids.shape, D]. */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.reshape(tf.gather(table, tf.reshape(ids, [-1])), [...ids.shape, table.shape[1]]);
}

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
      throw new Error(`Unknown activation "${name}": use one of gelu, gelu_pytorch_tanh, quick_gelu, silu, relu`);
  }
}
