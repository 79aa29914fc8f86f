// Region adapter: each region's RoIAlign features [s·s, C] are flattened and mapped by an MLP
// (Linear → GELU → Linear, as GPT4RoI's flatten → Linear → … → Linear) to `slots` LLM-width vectors, which fill
// that region's `slots` placeholder tokens.
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  gelu,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';

export interface RegionProjectorOptions {
  /** Encoder width after FeatureSelect (vision hidden × selected layers). */
  inDim: number;
  /** LLM hidden size. */
  outDim: number;
  /** The region encoder's RoIAlign bins per side (s). */
  outputSize: number;
  /** LLM slots per region (PVIT: 2; GPT4RoI / Ferret: 1). */
  slots?: number;
  /** Width of the MLP's hidden layer (default outDim). */
  hidden?: number;
  seed?: number;
  /** Std of the normal init (HF initializer_range). */
  std?: number;
}

export class RegionProjector extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly outputSize: number;
  readonly slots: number;
  readonly linear1: Linear;
  readonly linear2: Linear;

  constructor(opts: RegionProjectorOptions) {
    super();
    this.inDim = opts.inDim;
    this.outDim = opts.outDim;
    this.outputSize = opts.outputSize;
    this.slots = opts.slots ?? 1;
    const init = new Initializer({ seed: opts.seed ?? 0, std: opts.std ?? 0.02 });
    const hidden = opts.hidden ?? opts.outDim;
    const bins = this.outputSize * this.outputSize;
    this.linear1 = this.module('linear_1', new Linear(bins * this.inDim, hidden, { init }));
    this.linear2 = this.module('linear_2', new Linear(hidden, this.slots * this.outDim, { init }));
  }

  /** Regions per item (the layout's frames) after checking the grid is this adapter's s×s. */
  private regions(layout: FeatureLayout): number {
    const [rows, cols] = layout.grid ?? [0, 0];
    const K = layout.frames ?? 1;
    if (rows !== this.outputSize || cols !== this.outputSize || layout.tokens !== K * rows * cols) {
      throw new Error(
        `RegionProjector: expected K × ${this.outputSize}×${this.outputSize} region tokens (outputSize of the region encoder), got layout ${JSON.stringify(layout)}; set outputSize to the encoder's`,
      );
    }
    return K;
  }

  numSlots(layout: FeatureLayout): number {
    return this.regions(layout) * this.slots;
  }

  /** features [N, K·s·s, inDim] → [N, K·slots, outDim]. */
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const K = this.regions(ctx.layout);
    const N = features.shape[0];
    return tf.tidy(() => {
      const flat = tf.reshape(features, [N * K, -1]);
      const y = this.linear2.forward(gelu(this.linear1.forward(flat)));
      return tf.reshape(y, [N, K * this.slots, this.outDim]) as tf.Tensor3D;
    });
  }
}
