// Fuyu / OtterHD (`fuyu`): no vision tower. The `image_patches` encoder (@vistune/encoders) cuts the image into
// raw patch_size² × channels vectors; one Linear (`vision_embed_tokens`, HF FuyuForCausalLM) puts them into the
// decoder. After each row of patches a learnt row separator (Fuyu's |NEWLINE| token) lets the decoder read
// images of any size and aspect ratio as 2-D: slots = rows × (cols + 1).
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { FuyuProjectorConfig } from './config.js';
import { layoutGrid } from './layers.js';

export class FuyuProjector extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly vision_embed_tokens: Linear;
  readonly newline_embedding?: tf.Variable<tf.Rank.R1>;

  constructor(
    readonly config: FuyuProjectorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.vision_embed_tokens = this.module(
      'vision_embed_tokens',
      new Linear(config.inDim, config.outDim, { init, bias: config.bias }),
    );
    if (config.newline)
      this.newline_embedding = this.param('newline_embedding', init.normal([config.outDim]) as tf.Tensor1D);
  }

  numSlots(layout: FeatureLayout): number {
    const [rows, cols] = layoutGrid(layout, 'fuyu');
    return this.newline_embedding ? rows * (cols + 1) : rows * cols;
  }

  /** patches [N, rows·cols, inDim] → [N, rows·(cols + 1), outDim] (a separator closes each row). */
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => {
      const tokens = this.vision_embed_tokens.forward(features) as tf.Tensor3D;
      if (!this.newline_embedding) return tokens;
      const [rows, cols] = layoutGrid(ctx.layout, 'fuyu');
      const N = features.shape[0];
      const grid = tf.reshape(tokens, [N, rows, cols, this.outDim]);
      const separators = tf.tile(tf.reshape(this.newline_embedding, [1, 1, 1, this.outDim]), [N, rows, 1, 1]);
      return tf.reshape(tf.concat([grid, separators], 2), [N, rows * (cols + 1), this.outDim]) as tf.Tensor3D;
    });
  }
}
