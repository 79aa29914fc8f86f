// `point_pool` (registry kind `adapter`): encoder tokens [N, K, inDim] → LLM slots [N, K / pool, outDim].
// Neighbouring tokens are averaged in runs of `pool` (fewer slots, shorter prompts), then LayerNorm (max-pooled
// ReLU features are all ≥ 0, far from the LLM's zero-mean embeddings) → Linear → GELU → Linear.
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  gelu,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import { z } from '@vistune/core';

export const pointPoolSchema = z.strictObject({
  /** Encoder width after FeatureSelect (the pipeline fills it in). */
  inDim: z.number().int().min(1),
  /** LLM hidden size (the pipeline fills it in). */
  outDim: z.number().int().min(1),
  /** Tokens averaged into one slot; must divide the encoder's token count. */
  pool: z.number().int().min(1).default(1),
  /** Std of the random init of the Linear weights. */
  init_std: z.number().positive().default(0.02),
  /** Seed of the random init (the pipeline fills it in). */
  seed: z.number().int().default(0),
});
export type PointPoolConfig = z.output<typeof pointPoolSchema>;

export class PointPoolAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly norm: LayerNorm;
  readonly linear1: Linear;
  readonly linear2: Linear;

  constructor(readonly config: PointPoolConfig) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    const init = new Initializer({ seed: config.seed, std: config.init_std });
    this.norm = this.module('norm', new LayerNorm(config.inDim));
    this.linear1 = this.module('linear_1', new Linear(config.inDim, config.outDim, { init }));
    this.linear2 = this.module('linear_2', new Linear(config.outDim, config.outDim, { init }));
  }

  numSlots(layout: FeatureLayout): number {
    if (layout.tokens % this.config.pool !== 0)
      throw new Error(
        `point_pool: pool ${this.config.pool} does not divide the encoder's ${layout.tokens} tokens: set adapter.pool to a divisor of encoder.groups`,
      );
    return layout.tokens / this.config.pool;
  }

  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const slots = this.numSlots(ctx.layout);
    return tf.tidy(() => {
      const [N, , D] = features.shape;
      const pooled =
        this.config.pool === 1 ? features : tf.mean(tf.reshape(features, [N, slots, this.config.pool, D]), 2);
      return this.linear2.forward(gelu(this.linear1.forward(this.norm.forward(pooled)))) as tf.Tensor3D;
    });
  }
}
