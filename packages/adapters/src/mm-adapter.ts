// LaVIN's Mixture-of-Modality Adapter (MM-Adapter, RepAdapter_Router): in every LLM layer, before attention and
// before the MLP (on the normed input), x + scale·(w₀·up₀(down(x)) + w₁·up₁(down(x))) with one shared
// down-projection and two zero-initialised up-projections mixed by a softmax router over the sample's modality
// token (text-only or image-text) at temperature t. Zero up-projections make the untrained model the LLM.
// The image enters as visual tokens through one Linear (`proj`). Only the adapter trains (LaVIN's MMA).
import {
  type Adapter,
  type AdapterContext,
  type DecoderBlockContext,
  type DecoderBlockHook,
  type FeatureLayout,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { MMAdapterConfig } from './config.js';
import { ModuleGroup } from './layers.js';
import { mediaOf, samplesWithMedia } from './media.js';
import { checkLlmLayers } from './perceiver.js';

/** One RepAdapter_Router: conv_A (down, shared), conv_B / conv_D (up, zero-init), expert_weights (router). */
export class RoutedAdapter extends Module {
  readonly conv_A: Linear;
  readonly conv_B: Linear;
  readonly conv_D: Linear;
  readonly expert_weights: Linear;

  constructor(
    private readonly c: MMAdapterConfig,
    init: Initializer,
  ) {
    super();
    this.conv_A = this.module('conv_A', new Linear(c.outDim, c.hiddenDim, { init }));
    const zeros = new Initializer({ random: false });
    this.conv_B = this.module('conv_B', new Linear(c.hiddenDim, c.outDim, { init: zeros }));
    this.conv_D = this.module('conv_D', new Linear(c.hiddenDim, c.outDim, { init: zeros }));
    this.expert_weights = this.module('expert_weights', new Linear(c.outDim, 2, { init }));
  }

  /** Router weights [B, 2] from the samples' modality tokens [B, hidden]. */
  route(modalityTokens: tf.Tensor2D): tf.Tensor2D {
    return tf.softmax(tf.div(this.expert_weights.forward(modalityTokens), this.c.temperature)) as tf.Tensor2D;
  }

  /** x [B, T, hidden] → x + scale·(w₀·B(A x) + w₁·D(A x)). */
  forward(x: tf.Tensor3D, weights: tf.Tensor2D): tf.Tensor3D {
    const down = this.conv_A.forward(x);
    const [w0, w1] = tf.split(tf.expandDims(weights, 1), 2, 2) as [tf.Tensor, tf.Tensor]; // [B, 1, 1] each
    const mixed = tf.add(tf.mul(this.conv_B.forward(down), w0), tf.mul(this.conv_D.forward(down), w1));
    return tf.add(x, tf.mul(mixed, this.c.scale)) as tf.Tensor3D;
  }
}

/** The adapter pair of one LLM layer. */
class LayerAdapters extends Module {
  readonly attn: RoutedAdapter;
  readonly mlp: RoutedAdapter;
  constructor(c: MMAdapterConfig, init: Initializer) {
    super();
    this.attn = this.module('adapter_attn', new RoutedAdapter(c, init));
    this.mlp = this.module('adapter_mlp', new RoutedAdapter(c, init));
  }
}

/** `mm_adapter`: visual tokens through `proj`, routed adapters in every LLM layer. */
export class MMAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly proj: Linear;
  /** Row 0: text-only sample, row 1: image-text sample (LaVIN's modality tokens). */
  readonly modality_embedding: tf.Variable<tf.Rank.R2>;
  readonly layers: LayerAdapters[] = [];
  readonly blockHook: DecoderBlockHook;

  constructor(
    readonly config: MMAdapterConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.proj = this.module('proj', new Linear(config.inDim, config.outDim, { init, bias: config.bias }));
    // O(1) tokens, so the untrained router already tells the modalities apart.
    this.modality_embedding = this.param(
      'modality_embedding',
      init.normal([2, config.outDim], 1) as tf.Tensor2D,
    );
    const group = this.module('layers', new ModuleGroup());
    for (let i = 0; i < config.llmLayers; i++)
      this.layers.push(group.add(i, new LayerAdapters(config, init)));
    this.blockHook = {
      layers: (n) => {
        checkLlmLayers('mm_adapter', config.llmLayers, n);
        return this.layers.map((_, i) => i);
      },
      internals: (i) => {
        const pair = this.layers[i] as LayerAdapters;
        return {
          attentionInput: (x, ctx) => pair.attn.forward(x, pair.attn.route(this.modalityTokens(x, ctx))),
          mlpInput: (x, ctx) => pair.mlp.forward(x, pair.mlp.route(this.modalityTokens(x, ctx))),
        };
      },
    };
  }

  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }

  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return this.proj.forward(features) as tf.Tensor3D;
  }

  /** [B, hidden]: each sample's modality token (image-text when the call placed an item in it). */
  modalityTokens(x: tf.Tensor3D, ctx: DecoderBlockContext): tf.Tensor2D {
    const has = samplesWithMedia(mediaOf(ctx, this.config.modality), x.shape[0]);
    return tf.gather(this.modality_embedding, tf.tensor1d(Int32Array.from(has), 'int32')) as tf.Tensor2D;
  }
}
