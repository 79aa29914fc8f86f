// LLaVA-1.5 projector `mlp{N}x_gelu` = HF LlavaMultiModalProjector for N = 2:
// linear_1 → act → linear_2 (→ act → linear_3 …). Original LLaVA names it `mm_projector.{0,2,…}` (nn.Sequential).
import {
  type Adapter,
  type AdapterContext,
  activation,
  type FeatureLayout,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { MlpProjectorConfig } from './config.js';

/** `mm_projector.2.weight` (optionally under `model.`) → `linear_2.weight`; other names unchanged. */
export function mlpProjectorParamName(name: string): string {
  const m = /^(?:model\.)?(?:mm_projector\.)?(\d+)\.(weight|bias)$/.exec(name);
  if (!m) return name;
  const index = Number(m[1]);
  // Sequential(Linear, GELU, Linear, …): Linears sit at even indices.
  return index % 2 === 0 ? `linear_${index / 2 + 1}.${m[2]}` : name;
}

export class MlpProjector extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly layers: Linear[];
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(
    readonly config: MlpProjectorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.act = activation(config.act);
    this.layers = Array.from({ length: config.depth }, (_, i) =>
      this.module(
        `linear_${i + 1}`,
        new Linear(i === 0 ? config.inDim : config.outDim, config.outDim, { init, bias: config.bias }),
      ),
    );
  }

  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }

  /** features [N, tokens, inDim] → [N, tokens, outDim]. */
  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => {
      let h: tf.Tensor = this.layers[0].forward(features);
      for (const layer of this.layers.slice(1)) h = layer.forward(this.act(h));
      return h as tf.Tensor3D;
    });
  }

  /** Also accepts original-LLaVA names (`model.mm_projector.0.weight`, `mm_projector.2.bias`, `0.weight`). */
  override loadStateDict(
    weights: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>,
    opts: { strict?: boolean; source?: string } = {},
  ): { missing: string[]; unexpected: string[] } {
    const entries = weights instanceof Map ? [...weights] : Object.entries(weights);
    return super.loadStateDict(new Map(entries.map(([name, t]) => [mlpProjectorParamName(name), t])), opts);
  }
}
