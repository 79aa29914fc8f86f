// Building blocks shared by the connectors: a numbered module list and multi-head attention on [B, T, H·D]
// tensors (the op layer's attention does the maths and the gradients).
import { attention, Module, permute, reshape, type tf } from '@vistune/core';

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
