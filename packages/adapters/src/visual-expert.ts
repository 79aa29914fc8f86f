// CogVLM's visual expert (`visual_expert`): in every LLM layer the image positions get their own q/k/v/o and
// feed-forward weights while the text keeps the LLM's. CogVLM initialises the expert from the LLM; here each
// expert Linear is the LLM's Linear plus a zero-initialised delta (W_expert = W + Δ), which is the same model
// and the same gradients for a frozen LLM, and makes the untrained model exactly the LLM. Only image rows are
// kept through the deltas (a [B, T, 1] mask of the call's image positions). The image enters as
// slots through CogVLM's SwiGLU projector (`linear_proj` → LayerNorm → GELU → gate_proj·dense_h_to_4h →
// dense_4h_to_h). CogVLM trains the projector and the experts; the LLM stays frozen.
import {
  type Adapter,
  type AdapterContext,
  type DecoderBlockContext,
  type DecoderBlockHook,
  type DecoderProjection,
  type FeatureLayout,
  gelu,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  siluTimes,
  tf,
} from '@vistune/core';
import type { VisualExpertConfig } from './config.js';
import { ModuleGroup } from './layers.js';
import { mediaOf, mediaPositions } from './media.js';
import { checkLlmLayers } from './perceiver.js';

/** CogVLM's GLU projector from the vision width into the LLM. */
export class SwiGluProjector extends Module {
  readonly linear_proj: Linear;
  readonly norm1: LayerNorm;
  readonly gate_proj: Linear;
  readonly dense_h_to_4h: Linear;
  readonly dense_4h_to_h: Linear;

  constructor(inDim: number, outDim: number, hidden: number, init: Initializer) {
    super();
    this.linear_proj = this.module('linear_proj', new Linear(inDim, outDim, { init, bias: false }));
    this.norm1 = this.module('norm1', new LayerNorm(outDim));
    this.dense_h_to_4h = this.module('dense_h_to_4h', new Linear(outDim, hidden, { init, bias: false }));
    this.gate_proj = this.module('gate_proj', new Linear(outDim, hidden, { init, bias: false }));
    this.dense_4h_to_h = this.module('dense_4h_to_h', new Linear(hidden, outDim, { init, bias: false }));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    const h = gelu(this.norm1.forward(this.linear_proj.forward(x)));
    return this.dense_4h_to_h.forward(
      siluTimes(this.gate_proj.forward(h), this.dense_h_to_4h.forward(h)),
    ) as tf.Tensor3D;
  }
}

const EXPERT: readonly DecoderProjection[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The zero-initialised deltas of one layer's expert Linears. */
class ExpertLayer extends Module {
  readonly deltas = new Map<DecoderProjection, Linear>();
  add(which: DecoderProjection, inDim: number, outDim: number): void {
    this.deltas.set(which, this.module(which, new Linear(inDim, outDim, { init: new Initializer({ random: false }), bias: false })));
  }
}

export class VisualExpertAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly projector: SwiGluProjector;
  readonly layers: ExpertLayer[] = [];
  readonly blockHook: DecoderBlockHook;
  private readonly positionCache = new WeakMap<DecoderBlockContext, tf.Tensor3D | null>();

  constructor(
    readonly config: VisualExpertConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    const hidden = config.intermediateSize ?? 2 * config.outDim;
    this.projector = this.module('projector', new SwiGluProjector(config.inDim, config.outDim, hidden, init));
    const h = config.outDim;
    const kv = ((config.llmKeyValueHeads ?? config.llmHeads) * h) / config.llmHeads;
    const I = config.llmIntermediateSize;
    const shapes: Record<string, [number, number]> = {
      q_proj: [h, h],
      k_proj: [h, kv],
      v_proj: [h, kv],
      o_proj: [h, h],
      gate_proj: [h, I],
      up_proj: [h, I],
      down_proj: [I, h],
    };
    const group = this.module('layers', new ModuleGroup());
    for (let i = 0; i < config.llmLayers; i++) {
      const layer = group.add(i, new ExpertLayer());
      for (const which of EXPERT) layer.add(which, ...(shapes[which] as [number, number]));
      this.layers.push(layer);
    }
    this.blockHook = {
      layers: (n) => {
        checkLlmLayers('visual_expert', config.llmLayers, n);
        return this.layers.map((_, i) => i);
      },
      internals: (i) => ({
        project: (which, x, base, ctx) => this.project(i, which, x, base, ctx),
      }),
    };
  }

  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }

  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => this.projector.forward(features));
  }

  /** base(x) everywhere, plus Δ(x) at the image rows. */
  private project(
    layerIndex: number,
    which: DecoderProjection,
    x: tf.Tensor3D,
    base: (x: tf.Tensor3D) => tf.Tensor3D,
    ctx: DecoderBlockContext,
  ): tf.Tensor3D {
    const y = base(x);
    const delta = (this.layers[layerIndex] as ExpertLayer).deltas.get(which);
    if (!delta) return y;
    const [B, T, width] = x.shape;
    const positions = this.imagePositions(ctx, B, T);
    if (!positions) return y;
    const out = y.shape[2];
    if (delta.weight.shape[0] !== out || delta.weight.shape[1] !== width)
      throw new Error(
        `visual_expert: the LLM's ${which} maps ${width} → ${out} features, the expert ${delta.weight.shape[1]} → ${delta.weight.shape[0]}: set llmIntermediateSize / llmKeyValueHeads to the LLM's`,
      );
    // Δ on every row, kept at the image rows: on wasm one matmul and a mask beat gathering the rows and
    // scattering them back (4× faster steps on the demo world).
    const added = tf.mul(delta.forward(x), positions);
    return tf.add(y, added) as tf.Tensor3D;
  }

  /** [B, T, 1] 1 at the call's image positions (one mask per block call, shared by its seven Linears); none: undefined. */
  private imagePositions(ctx: DecoderBlockContext, batch: number, tokens: number): tf.Tensor3D | undefined {
    const cached = this.positionCache.get(ctx);
    if (cached !== undefined) return cached ?? undefined;
    const media = mediaOf(ctx, this.config.modality);
    // Decode steps after the prefill see no image position: they skip the deltas.
    const inCall = (row: number) => {
      const t = (media?.position[row] as number) - ctx.pastLength;
      return t >= 0 && t < tokens;
    };
    const mask = media && media.sample.some((_, row) => inCall(row)) ? mediaPositions(media, batch, tokens, ctx.pastLength) : undefined;
    this.positionCache.set(ctx, mask ?? null);
    return mask;
  }
}
