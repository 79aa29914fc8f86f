// SigLIP's attention-pooling head (SiglipMultiheadAttentionPoolingHead): a learned probe query attends over
// all patches through torch nn.MultiheadAttention (packed in_proj), then a residual MLP; output [B, hidden].
import { attention, type Initializer, LayerNorm, Linear, linear, Module, tf } from '@vistune/core';
import type { VisionTransformerConfig } from './config.js';
import { Mlp, mergeHeads, splitHeads } from './layers.js';

/** torch nn.MultiheadAttention parameters: `in_proj_weight` [3D, D] (q; k; v rows), `in_proj_bias`, `out_proj`. */
class PackedMultiheadAttention extends Module {
  readonly in_proj_weight: tf.Variable<tf.Rank.R2>;
  readonly in_proj_bias: tf.Variable<tf.Rank.R1>;
  readonly out_proj: Linear;

  constructor(
    hidden: number,
    private readonly heads: number,
    init: Initializer,
  ) {
    super();
    this.in_proj_weight = this.param('in_proj_weight', init.normal([3 * hidden, hidden]) as tf.Tensor2D);
    this.in_proj_bias = this.param('in_proj_bias', init.zeros([3 * hidden]) as tf.Tensor1D);
    this.out_proj = this.module('out_proj', new Linear(hidden, hidden, { init }));
  }

  forward(query: tf.Tensor3D, keyValue: tf.Tensor3D): tf.Tensor3D {
    const [wq, wk, wv] = tf.split(this.in_proj_weight, 3, 0) as tf.Tensor2D[];
    const [bq, bk, bv] = tf.split(this.in_proj_bias, 3, 0) as tf.Tensor1D[];
    const q = splitHeads(linear(query, wq, bq), this.heads);
    const k = splitHeads(linear(keyValue, wk, bk), this.heads);
    const v = splitHeads(linear(keyValue, wv, bv), this.heads);
    return this.out_proj.forward(mergeHeads(attention(q, k, v))) as tf.Tensor3D;
  }
}

export class AttentionPoolingHead extends Module {
  readonly probe: tf.Variable<tf.Rank.R3>;
  readonly attention: PackedMultiheadAttention;
  readonly layernorm: LayerNorm;
  readonly mlp: Mlp;

  constructor(config: VisionTransformerConfig, init: Initializer) {
    super();
    const d = config.hiddenSize;
    this.probe = this.param('probe', init.normal([1, 1, d]) as tf.Tensor3D);
    this.attention = this.module(
      'attention',
      new PackedMultiheadAttention(d, config.numAttentionHeads, init),
    );
    this.layernorm = this.module('layernorm', new LayerNorm(d, config.layerNormEps));
    this.mlp = this.module('mlp', new Mlp(d, config.intermediateSize, config.hiddenAct, init));
  }

  /** hidden [B, T, D] (after post_layernorm) → pooled [B, D]. */
  forward(hidden: tf.Tensor3D): tf.Tensor2D {
    const [b, , d] = hidden.shape;
    const probe = tf.broadcastTo(this.probe, [b, 1, d]) as tf.Tensor3D;
    const attended = this.attention.forward(probe, hidden);
    const out = tf.add(attended, this.mlp.forward(this.layernorm.forward(attended)));
    return tf.reshape(out, [b, d]) as tf.Tensor2D;
  }
}
