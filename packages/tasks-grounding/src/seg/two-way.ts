// SAM's two-way transformer (segment_anything/modeling/transformer.py), small: prompt tokens and image
// positions attend to each other in every block (tokens: self-attention, token→image, MLP; image: image→token),
// then a final token→image attention. Post-norm residuals and positional encodings added to queries and keys
// at every attention, as SAM does. Parameter names follow SAM's state dict.
import { attention, type Initializer, LayerNorm, Linear, Module, tf } from '@vistune/core';
import { ModuleList } from '@vistune/encoders';

/** SAM `Attention`: q/k/v projections to `innerDim`, multi-head scaled dot product, out projection. */
export class TokenAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly outProj: Linear;

  constructor(
    readonly dim: number,
    readonly heads: number,
    init: Initializer,
    readonly innerDim = dim,
  ) {
    super();
    if (innerDim % heads !== 0)
      throw new Error(`TokenAttention: inner dim ${innerDim} is not divisible by ${heads} heads`);
    this.qProj = this.module('q_proj', new Linear(dim, innerDim, { init }));
    this.kProj = this.module('k_proj', new Linear(dim, innerDim, { init }));
    this.vProj = this.module('v_proj', new Linear(dim, innerDim, { init }));
    this.outProj = this.module('out_proj', new Linear(innerDim, dim, { init }));
  }

  /** q [B, Tq, dim], k/v [B, Tk, dim] → [B, Tq, dim] (no mask: every token sees every position). */
  forward(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
    const split = (x: tf.Tensor, T: number) =>
      tf.transpose(tf.reshape(x, [x.shape[0] as number, T, this.heads, -1]), [0, 2, 1, 3]) as tf.Tensor4D;
    const [B, Tq] = q.shape;
    const Tk = k.shape[1];
    const out = attention(
      split(this.qProj.forward(q), Tq),
      split(this.kProj.forward(k), Tk),
      split(this.vProj.forward(v), Tk),
    );
    return this.outProj.forward(
      tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, Tq, this.innerDim]),
    ) as tf.Tensor3D;
  }
}

/** SAM `MLPBlock` (lin1 → ReLU → lin2). */
export class MlpBlock extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;
  constructor(dim: number, hidden: number, init: Initializer) {
    super();
    this.lin1 = this.module('lin1', new Linear(dim, hidden, { init }));
    this.lin2 = this.module('lin2', new Linear(hidden, dim, { init }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.lin2.forward(tf.relu(this.lin1.forward(x)));
  }
}

export interface TwoWayOptions {
  dim: number;
  heads: number;
  depth: number;
  mlpDim: number;
  /** SAM: the cross attentions work at dim / 2. */
  crossAttentionDownsample: number;
}

/** SAM `TwoWayAttentionBlock`. */
export class TwoWayBlock extends Module {
  readonly selfAttn: TokenAttention;
  readonly norm1: LayerNorm;
  readonly tokenToImage: TokenAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MlpBlock;
  readonly norm3: LayerNorm;
  readonly imageToToken: TokenAttention;
  readonly norm4: LayerNorm;

  constructor(
    o: TwoWayOptions,
    init: Initializer,
    readonly skipFirstLayerPe: boolean,
  ) {
    super();
    const inner = o.dim / o.crossAttentionDownsample;
    this.selfAttn = this.module('self_attn', new TokenAttention(o.dim, o.heads, init));
    this.norm1 = this.module('norm1', new LayerNorm(o.dim));
    this.tokenToImage = this.module(
      'cross_attn_token_to_image',
      new TokenAttention(o.dim, o.heads, init, inner),
    );
    this.norm2 = this.module('norm2', new LayerNorm(o.dim));
    this.mlp = this.module('mlp', new MlpBlock(o.dim, o.mlpDim, init));
    this.norm3 = this.module('norm3', new LayerNorm(o.dim));
    this.norm4 = this.module('norm4', new LayerNorm(o.dim));
    this.imageToToken = this.module(
      'cross_attn_image_to_token',
      new TokenAttention(o.dim, o.heads, init, inner),
    );
  }

  /** queries [K, T, D] (prompt tokens), keys [K, S, D] (image); queryPe / keyPe are added before attending. */
  forward(
    queries: tf.Tensor3D,
    keys: tf.Tensor3D,
    queryPe: tf.Tensor3D,
    keyPe: tf.Tensor3D,
  ): [tf.Tensor3D, tf.Tensor3D] {
    let q = queries;
    if (this.skipFirstLayerPe) q = this.selfAttn.forward(q, q, q);
    else {
      const withPe = tf.add(q, queryPe) as tf.Tensor3D;
      q = tf.add(q, this.selfAttn.forward(withPe, withPe, q)) as tf.Tensor3D;
    }
    q = this.norm1.forward(q) as tf.Tensor3D;
    const keysWithPe = tf.add(keys, keyPe) as tf.Tensor3D;
    q = this.norm2.forward(
      tf.add(q, this.tokenToImage.forward(tf.add(q, queryPe) as tf.Tensor3D, keysWithPe, keys)),
    ) as tf.Tensor3D;
    q = this.norm3.forward(tf.add(q, this.mlp.forward(q))) as tf.Tensor3D;
    const k = this.norm4.forward(
      tf.add(keys, this.imageToToken.forward(keysWithPe, tf.add(q, queryPe) as tf.Tensor3D, q)),
    ) as tf.Tensor3D;
    return [q, k];
  }
}

/** SAM `TwoWayTransformer`: `depth` blocks, then a final token→image attention and norm. */
export class TwoWayTransformer extends Module {
  readonly layers: TwoWayBlock[];
  readonly finalAttn: TokenAttention;
  readonly normFinal: LayerNorm;

  constructor(o: TwoWayOptions, init: Initializer) {
    super();
    const blocks = Array.from({ length: o.depth }, (_, i) => new TwoWayBlock(o, init, i === 0));
    this.layers = [...this.module('layers', new ModuleList(blocks)).items];
    const inner = o.dim / o.crossAttentionDownsample;
    this.finalAttn = this.module(
      'final_attn_token_to_image',
      new TokenAttention(o.dim, o.heads, init, inner),
    );
    this.normFinal = this.module('norm_final_attn', new LayerNorm(o.dim));
  }

  /** image [K, S, D] with imagePe [K, S, D]; tokens [K, T, D] (also their positional encoding) → (tokens, image). */
  forward(image: tf.Tensor3D, imagePe: tf.Tensor3D, tokens: tf.Tensor3D): [tf.Tensor3D, tf.Tensor3D] {
    let q = tokens;
    let k = image;
    for (const layer of this.layers) [q, k] = layer.forward(q, k, tokens, imagePe);
    const attn = this.finalAttn.forward(
      tf.add(q, tokens) as tf.Tensor3D,
      tf.add(k, imagePe) as tf.Tensor3D,
      k,
    );
    return [this.normFinal.forward(tf.add(q, attn)) as tf.Tensor3D, k];
  }
}
