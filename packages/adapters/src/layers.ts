// Building blocks shared by the connectors: a numbered module list and multi-head attention on [B, T, H·D]
// tensors (the op layer's attention does the maths and the gradients).
import {
  attention,
  gelu,
  type Initializer,
  LayerNorm,
  Linear,
  Module,
  matmul,
  permute,
  reshape,
  tf,
} from '@vistune/core';

/** A numbered list of child modules (HF nn.ModuleList): parameter names `0.`, `1.`, … */
export class ModuleList<M extends Module> extends Module {
  constructor(readonly items: readonly M[]) {
    super();
    for (const [i, item] of items.entries()) this.module(i, item);
  }
}

/**
 * Multi-head attention of queries [B, T, H·D] over keys/values [B, S, H·D] → [B, T, H·D].
 * keyMask [B, S]: 1 = attend, 0 = ignore. No causal mask: every connector here attends bidirectionally.
 */
export function multiHeadAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  keyMask?: tf.Tensor2D,
): tf.Tensor3D {
  const [B, T, width] = q.shape as [number, number, number];
  const S = k.shape[1] as number;
  const D = width / heads;
  if (!Number.isInteger(D))
    throw new Error(`multiHeadAttention: width ${width} is not divisible by ${heads} heads`);
  const split = (x: tf.Tensor, len: number) =>
    permute(reshape(x, [B, len, heads, D]), [0, 2, 1, 3]) as tf.Tensor4D;
  const y = attention(split(q, T), split(k, S), split(v, S), { keyMask });
  return reshape(permute(y, [0, 2, 1, 3]), [B, T, width]) as tf.Tensor3D;
}

/** Row-major [rows, cols] of a layout's body, a square when the encoder gives none. */
export function layoutGrid(
  layout: { tokens: number; prefixTokens: number; grid?: readonly [number, number]; frames?: number },
  who: string,
): readonly [number, number] {
  if (layout.grid) return layout.grid;
  const body = (layout.tokens - layout.prefixTokens) / (layout.frames ?? 1);
  const side = Math.round(Math.sqrt(body));
  if (side * side !== body)
    throw new Error(`${who}: ${body} tokens per frame form no square grid and the encoder gave no grid`);
  return [side, side];
}

/**
 * Attention with a per-query mask (Flamingo's media masks, which the op layer's key mask cannot express):
 * q [B, T, H·D], k/v [B, S, H·D], visible [B, T, S] (1 = attend) → [B, T, H·D]. Rows with nothing visible
 * come out as a uniform average; callers zero them.
 */
export function maskedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  visible: tf.Tensor3D,
): tf.Tensor3D {
  const [B, T, width] = q.shape as [number, number, number];
  const S = k.shape[1] as number;
  const D = width / heads;
  const split = (x: tf.Tensor, len: number) => permute(reshape(x, [B, len, heads, D]), [0, 2, 1, 3]);
  const scores = tf.mul(matmul(split(q, T), split(k, S), false, true), 1 / Math.sqrt(D));
  const additive = tf.mul(tf.sub(1, tf.expandDims(visible, 1)), -1e9);
  const probs = tf.softmax(tf.add(scores, additive));
  return reshape(permute(matmul(probs, split(v, S)), [0, 2, 1, 3]), [B, T, width]) as tf.Tensor3D;
}

/** LayerNorm → Linear(dim, mult·dim) → GELU → Linear back, no biases (Flamingo's FeedForward: `0`, `1`, `3`). */
export class PreNormFeedForward extends Module {
  readonly norm: LayerNorm;
  readonly up: Linear;
  readonly down: Linear;

  constructor(dim: number, mult: number, init: Initializer) {
    super();
    this.norm = this.module(0, new LayerNorm(dim));
    this.up = this.module(1, new Linear(dim, dim * mult, { init, bias: false }));
    this.down = this.module(3, new Linear(dim * mult, dim, { init, bias: false }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.down.forward(gelu(this.up.forward(this.norm.forward(x))));
  }
}

/** A Module that only groups children under names (`gated_cross_attn_layers.3`). */
export class ModuleGroup extends Module {
  add<M extends Module>(name: string | number, child: M): M {
    return this.module(name, child);
  }
}
