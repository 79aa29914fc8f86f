// Plain-tfjs versions of the op layer (transpose flags, tfjs's own gradients, one-hot cross-entropy, plain
// gather): the baseline that benchOps measures the op layer against.
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionOptions } from '../ops/index.js';

export function naiveLinear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const [outDim, inDim] = weight.shape;
  const y = tf.matMul(tf.reshape(x, [-1, inDim]), weight, false, true);
  return tf.reshape(bias ? tf.add(y, bias) : y, [...x.shape.slice(0, -1), outDim]);
}

export function naiveRmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), weight);
}

/** Repeats K/V for GQA, masks with where + fill, batched matMul with transposeB. */
export function naiveAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  opts: AttentionOptions = {},
): tf.Tensor4D {
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const rep = H / Hkv;
  const kk =
    rep === 1 ? k : tf.reshape(tf.tile(tf.reshape(k, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  const vv =
    rep === 1 ? v : tf.reshape(tf.tile(tf.reshape(v, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
  let scores = tf.mul(tf.matMul(q, kk, false, true), opts.scale ?? 1 / Math.sqrt(D));
  if (opts.causal) {
    const offset = opts.queryOffset ?? S - T;
    const allowed = tf.lessEqual(
      tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]),
      tf.reshape(tf.range(offset, offset + T, 1, 'int32'), [T, 1]),
    );
    scores = tf.where(tf.broadcastTo(allowed, scores.shape), scores, tf.fill(scores.shape, -1e9));
  }
  if (opts.keyMask) {
    const keep = tf.reshape(tf.cast(opts.keyMask, 'bool'), [B, 1, 1, S]);
    scores = tf.where(tf.broadcastTo(keep, scores.shape), scores, tf.fill(scores.shape, -1e9));
  }
  return tf.matMul(tf.softmax(scores), vv) as tf.Tensor4D;
}

export function naiveCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, ignoreIndex = -100): tf.Scalar {
  const valid = tf.notEqual(labels, ignoreIndex);
  const safe = tf.where(valid, labels, tf.zerosLike(labels));
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(safe, logits.shape[1])), -1);
  const w = tf.cast(valid, 'float32');
  return tf.div(tf.neg(tf.sum(tf.mul(picked, w))), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
}

export function naiveEmbedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.reshape(tf.gather(table, tf.reshape(ids, [-1])), [...ids.shape, table.shape[1]]);
}
