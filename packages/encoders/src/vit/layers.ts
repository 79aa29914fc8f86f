// Transformer block of the ViT with HF parameter names (`self_attn.q_proj.weight`, `layer_norm1.bias`, `mlp.fc1.weight`).
import { activation, attention, type Initializer, LayerNorm, Linear, Module, tf } from '@vistune/core';

/** A numbered list of child modules (HF nn.ModuleList): names `0.`, `1.`, … */
export class ModuleList<M extends Module> extends Module {
  constructor(readonly items: readonly M[]) {
    super();
    for (const [i, item] of items.entries()) this.module(i, item);
  }
}

/** [B, T, H·D] → [B, H, T, D]. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, t, hidden] = x.shape;
  return tf.transpose(tf.reshape(x, [b, t, heads, hidden / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, D] → [B, T, H·D]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, t, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * d]);
}

/** Bidirectional multi-head self-attention with biased q/k/v/out projections (CLIPAttention / SiglipAttention). */
export class SelfAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;

  constructor(
    hidden: number,
    readonly heads: number,
    init: Initializer,
  ) {
    super();
    // Registration order follows HF's module order so state dicts list alike.
    this.k_proj = this.module('k_proj', new Linear(hidden, hidden, { init }));
    this.v_proj = this.module('v_proj', new Linear(hidden, hidden, { init }));
    this.q_proj = this.module('q_proj', new Linear(hidden, hidden, { init }));
    this.out_proj = this.module('out_proj', new Linear(hidden, hidden, { init }));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    const q = splitHeads(this.q_proj.forward(x), this.heads);
    const k = splitHeads(this.k_proj.forward(x), this.heads);
    const v = splitHeads(this.v_proj.forward(x), this.heads);
    return this.out_proj.forward(mergeHeads(attention(q, k, v))) as tf.Tensor3D;
  }
}

/** fc1 → activation → fc2. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(hidden: number, intermediate: number, act: string, init: Initializer) {
    super();
    this.act = activation(act);
    this.fc1 = this.module('fc1', new Linear(hidden, intermediate, { init }));
    this.fc2 = this.module('fc2', new Linear(intermediate, hidden, { init }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.fc2.forward(this.act(this.fc1.forward(x)));
  }
}

export interface EncoderLayerConfig {
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  layerNormEps: number;
  hiddenAct: string;
}

/** Pre-LN transformer block: h = x + attn(ln1(x)); out = h + mlp(ln2(h)). */
export class EncoderLayer extends Module {
  readonly self_attn: SelfAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: Mlp;
  readonly layer_norm2: LayerNorm;

  constructor(c: EncoderLayerConfig, init: Initializer) {
    super();
    this.self_attn = this.module('self_attn', new SelfAttention(c.hiddenSize, c.numAttentionHeads, init));
    this.layer_norm1 = this.module('layer_norm1', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.mlp = this.module('mlp', new Mlp(c.hiddenSize, c.intermediateSize, c.hiddenAct, init));
    this.layer_norm2 = this.module('layer_norm2', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    const h = tf.add(x, this.self_attn.forward(this.layer_norm1.forward(x) as tf.Tensor3D));
    return tf.add(h, this.mlp.forward(this.layer_norm2.forward(h))) as tf.Tensor3D;
  }
}
