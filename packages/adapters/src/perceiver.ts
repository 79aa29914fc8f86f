// Flamingo / OpenFlamingo / Otter / MultiModal-GPT connectors. The Perceiver resampler turns any number of
// image features into numLatents latents (latents attend to [features; latents], then a feed-forward, each
// residual; a final LayerNorm), projected into the LLM width as slots. `flamingo` adds tanh-gated
// cross-attention blocks before every n-th LLM layer through the block hooks: text tokens attend to the latents of
// the item placed last before them; both gates start at 0, so the untrained model is the LLM.
// Names follow OpenFlamingo (`perceiver.latents`, `perceiver.layers.0.0.to_kv`, `attn_gate`, `ff.1`).
import {
  type Adapter,
  type AdapterContext,
  type DecoderBlockFn,
  type DecoderBlockHook,
  type FeatureLayout,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { FlamingoConfig, PerceiverResamplerConfig } from './config.js';
import {
  ModuleGroup,
  ModuleList,
  maskedAttention,
  multiHeadAttention,
  PreNormFeedForward,
} from './layers.js';
import { mediaKeys, mediaOf } from './media.js';

/** OpenFlamingo's attention projections (to_q, fused to_kv, to_out; no biases) after named LayerNorms. */
class FlamingoAttention extends Module {
  readonly norms = new Map<string, LayerNorm>();
  readonly to_q: Linear;
  readonly to_kv: Linear;
  readonly to_out: Linear;

  constructor(
    dim: number,
    protected readonly heads: number,
    dimHead: number,
    init: Initializer,
    normNames: readonly string[],
  ) {
    super();
    const inner = heads * dimHead;
    for (const name of normNames) this.norms.set(name, this.module(name, new LayerNorm(dim)));
    this.to_q = this.module('to_q', new Linear(dim, inner, { init, bias: false }));
    this.to_kv = this.module('to_kv', new Linear(dim, 2 * inner, { init, bias: false }));
    this.to_out = this.module('to_out', new Linear(inner, dim, { init, bias: false }));
  }

  protected norm(name: string, x: tf.Tensor): tf.Tensor3D {
    return (this.norms.get(name) as LayerNorm).forward(x) as tf.Tensor3D;
  }

  /** queries [B, T, dim] attend to keyValues [B, S, dim]; `visible` [B, T, S] masks per query. */
  protected attend(queries: tf.Tensor3D, keyValues: tf.Tensor3D, visible?: tf.Tensor3D): tf.Tensor3D {
    const [k, v] = tf.split(this.to_kv.forward(keyValues), 2, 2) as [tf.Tensor, tf.Tensor];
    const q = this.to_q.forward(queries);
    const y = visible
      ? maskedAttention(q, k, v, this.heads, visible)
      : multiHeadAttention(q, k, v, this.heads);
    return this.to_out.forward(y) as tf.Tensor3D;
  }
}

/** OpenFlamingo PerceiverAttention: latents query [media; latents]. */
class PerceiverAttention extends FlamingoAttention {
  constructor(dim: number, heads: number, dimHead: number, init: Initializer) {
    super(dim, heads, dimHead, init, ['norm_media', 'norm_latents']);
  }

  forward(media: tf.Tensor3D, latents: tf.Tensor3D): tf.Tensor3D {
    const l = this.norm('norm_latents', latents);
    return this.attend(l, tf.concat([this.norm('norm_media', media), l], 1) as tf.Tensor3D);
  }
}

/** One resampler layer: OpenFlamingo's ModuleList([PerceiverAttention, FeedForward]) → names `0.*`, `1.*`. */
class PerceiverLayer extends Module {
  readonly attn: PerceiverAttention;
  readonly ff: PreNormFeedForward;
  constructor(c: PerceiverResamplerConfig | FlamingoConfig, init: Initializer) {
    super();
    this.attn = this.module(0, new PerceiverAttention(c.inDim, c.heads, c.dimHead, init));
    this.ff = this.module(1, new PreNormFeedForward(c.inDim, c.ffMult, init));
  }
}

export class PerceiverResampler extends Module {
  readonly latents: tf.Variable<tf.Rank.R2>;
  readonly layers: readonly PerceiverLayer[];
  readonly norm: LayerNorm;

  constructor(c: PerceiverResamplerConfig | FlamingoConfig, init: Initializer) {
    super();
    // OpenFlamingo draws the latents from N(0, 1).
    this.latents = this.param('latents', init.normal([c.numLatents, c.inDim], 1) as tf.Tensor2D);
    const layers = Array.from({ length: c.depth }, () => new PerceiverLayer(c, init));
    this.layers = this.module('layers', new ModuleList(layers)).items;
    this.norm = this.module('norm', new LayerNorm(c.inDim));
  }

  /** features [N, S, dim] → latents [N, numLatents, dim]. */
  forward(features: tf.Tensor3D): tf.Tensor3D {
    const N = features.shape[0];
    let latents = tf.tile(tf.expandDims(this.latents, 0), [N, 1, 1]) as tf.Tensor3D;
    for (const layer of this.layers) {
      latents = tf.add(layer.attn.forward(features, latents), latents) as tf.Tensor3D;
      latents = tf.add(layer.ff.forward(latents), latents) as tf.Tensor3D;
    }
    return this.norm.forward(latents) as tf.Tensor3D;
  }
}

/** `perceiver_resampler`: numLatents slots per item, projected into the LLM (`proj`). */
export class PerceiverResamplerAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly perceiver: PerceiverResampler;
  readonly proj: Linear;

  constructor(
    readonly config: PerceiverResamplerConfig | FlamingoConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.perceiver = this.module('perceiver', new PerceiverResampler(config, init));
    this.proj = this.module('proj', new Linear(config.inDim, config.outDim, { init, bias: config.bias }));
  }

  numSlots(_layout: FeatureLayout): number {
    return this.config.numLatents;
  }

  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => this.proj.forward(this.perceiver.forward(features)) as tf.Tensor3D);
  }
}

/** OpenFlamingo MaskedCrossAttention: LayerNorm(text) queries the media latents (already in the LLM width). */
class MaskedCrossAttention extends FlamingoAttention {
  constructor(dim: number, heads: number, dimHead: number, init: Initializer) {
    super(dim, heads, dimHead, init, ['norm']);
  }

  forward(x: tf.Tensor3D, keys: tf.Tensor3D, visible: tf.Tensor3D): tf.Tensor3D {
    return this.attend(this.norm('norm', x), keys, visible);
  }
}

/** OpenFlamingo GatedCrossAttentionBlock: x + tanh(attn_gate)·xattn(x), then + tanh(ff_gate)·ff(x). */
export class GatedCrossAttentionBlock extends Module {
  readonly attn: MaskedCrossAttention;
  readonly attn_gate: tf.Variable<tf.Rank.R1>;
  readonly ff: PreNormFeedForward;
  readonly ff_gate: tf.Variable<tf.Rank.R1>;

  constructor(c: FlamingoConfig, init: Initializer) {
    super();
    this.attn = this.module('attn', new MaskedCrossAttention(c.outDim, c.xattnHeads, c.xattnDimHead, init));
    this.attn_gate = this.param('attn_gate', tf.zeros([1]) as tf.Tensor1D);
    this.ff = this.module('ff', new PreNormFeedForward(c.outDim, c.ffMult, init));
    this.ff_gate = this.param('ff_gate', tf.zeros([1]) as tf.Tensor1D);
  }

  forward(x: tf.Tensor3D, keys: tf.Tensor3D, visible: tf.Tensor3D, seesMedia: tf.Tensor3D): tf.Tensor3D {
    const attended = tf.mul(this.attn.forward(x, keys, visible), seesMedia);
    const h = tf.add(x, tf.mul(attended, tf.tanh(this.attn_gate)));
    return tf.add(h, tf.mul(this.ff.forward(h), tf.tanh(this.ff_gate))) as tf.Tensor3D;
  }
}

/** LLM layers that get a gated cross-attention block: (i + 1) % every == 0. */
export function everyNthLayer(numLayers: number, every: number): number[] {
  return Array.from({ length: numLayers }, (_, i) => i).filter((i) => (i + 1) % every === 0);
}

/** Throws when the LLM's depth differs from the connector's `llmLayers`. */
export function checkLlmLayers(who: string, configured: number, actual: number): void {
  if (configured !== actual)
    throw new Error(
      `${who}: llmLayers is ${configured} but the LLM has ${actual} layers: set llmLayers to ${actual}`,
    );
}

/**
 * `flamingo`: the Perceiver resampler's latents are the item's slots (they also fill its placeholders) and
 * the keys of gated cross-attention blocks before every `crossAttnEveryNLayers`-th LLM layer.
 */
export class FlamingoAdapter extends PerceiverResamplerAdapter {
  declare readonly config: FlamingoConfig;
  readonly gated_cross_attn_layers: ModuleGroup;
  readonly blocks = new Map<number, GatedCrossAttentionBlock>();
  readonly blockHook: DecoderBlockHook;

  constructor(
    config: FlamingoConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super(config, init);
    this.gated_cross_attn_layers = this.module('gated_cross_attn_layers', new ModuleGroup());
    for (const i of everyNthLayer(config.llmLayers, config.crossAttnEveryNLayers))
      this.blocks.set(i, this.gated_cross_attn_layers.add(i, new GatedCrossAttentionBlock(config, init)));
    this.blockHook = {
      layers: (n) => {
        checkLlmLayers('flamingo', config.llmLayers, n);
        return [...this.blocks.keys()];
      },
      wrap: (block, i) => this.wrapBlock(block, i),
    };
  }

  private wrapBlock(block: DecoderBlockFn, layerIndex: number): DecoderBlockFn {
    const gated = this.blocks.get(layerIndex) as GatedCrossAttentionBlock;
    return (hidden, ctx) => {
      const media = mediaOf(ctx, this.config.modality);
      if (!media) return block(hidden, ctx);
      const [B, T] = hidden.shape;
      const m = mediaKeys(
        media,
        B,
        T,
        ctx.pastLength,
        this.config.numLatents,
        this.config.onlyAttendImmediateMedia,
      );
      return block(gated.forward(hidden, m.keys, m.visible, m.seesMedia), ctx);
    };
  }
}
