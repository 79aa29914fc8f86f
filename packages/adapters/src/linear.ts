// LLaVA-1 projector: one Linear from encoder features to the LLM width. Names `weight`/`bias` as LLaVA's
// `mm_projector` (an nn.Linear itself), so `model.mm_projector.weight` loads without renaming.
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  Initializer,
  Linear,
  type tf,
} from '@vistune/core';
import type { LinearProjectorConfig } from './config.js';

export class LinearProjector extends Linear implements Adapter {
  readonly inDim: number;
  readonly outDim: number;

  constructor(
    config: LinearProjectorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super(config.inDim, config.outDim, { init, bias: config.bias });
    this.inDim = config.inDim;
    this.outDim = config.outDim;
  }

  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }

  /** features [N, tokens, inDim] → [N, tokens, outDim]. */
  override forward(features: tf.Tensor, _ctx?: AdapterContext): tf.Tensor3D {
    return super.forward(features) as tf.Tensor3D;
  }
}
