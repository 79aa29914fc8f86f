// LLaMA-Adapter V2 (`llama_adapter`): learnable adaption prompts in chosen LLM layers, read by each layer's own
// attention through its k_proj / v_proj (no RoPE) and added to the attention output behind a per-head tanh gate
// that starts at 0. The image enters through the prompts only: its features go through clip_proj, a few
// transformer blocks with a learnt visual query, and visual_proj; the resulting query is added to the prompts of
// the bottom `visualLayers` layers (early fusion), while the top `adapterLayers` layers keep static prompts.
// V2's bias and scale tuning puts y = s ⊙ (Wx + b) (b = 0, s = 1) on every Linear of every LLM layer; the recipe
// trains the adapter and the LLM's norms. Names follow the V2 release (`clip_proj`, `visual_query`,
// `visual_blocks`, `visual_proj`, `adapter_query`). The item's slots carry the visual query to the hook; with
// `hideSlots` the text never attends to them, so the image is seen through the prompts alone.
import {
  type Adapter,
  type AdapterContext,
  attention,
  type DecoderAttentionParts,
  type DecoderBlockContext,
  type DecoderBlockHook,
  type DecoderBlockInternals,
  type DecoderProjection,
  type FeatureLayout,
  gelu,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  permute,
  reshape,
  tf,
} from '@vistune/core';
import type { LlamaAdapterConfig } from './config.js';
import { ModuleGroup, ModuleList, multiHeadAttention } from './layers.js';
import { hideSlotPositions, mediaOf, sampleSlots } from './media.js';
import { checkLlmLayers } from './perceiver.js';

/** A pre-norm ViT block (timm `Block`): x + attn(norm1 x), then + mlp(norm2 x); qkv with bias. */
export class VisualBlock extends Module {
  readonly norm1: LayerNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly norm2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(
    dim: number,
    private readonly heads: number,
    mlpRatio: number,
    init: Initializer,
  ) {
    super();
    this.norm1 = this.module('norm1', new LayerNorm(dim));
    const attn = this.module('attn', new ModuleGroup());
    this.qkv = attn.add('qkv', new Linear(dim, 3 * dim, { init }));
    this.proj = attn.add('proj', new Linear(dim, dim, { init }));
    this.norm2 = this.module('norm2', new LayerNorm(dim));
    const mlp = this.module('mlp', new ModuleGroup());
    this.fc1 = mlp.add('fc1', new Linear(dim, mlpRatio * dim, { init }));
    this.fc2 = mlp.add('fc2', new Linear(mlpRatio * dim, dim, { init }));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    const [q, k, v] = tf.split(this.qkv.forward(this.norm1.forward(x)), 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const h = tf.add(x, this.proj.forward(multiHeadAttention(q, k, v, this.heads)));
    return tf.add(h, this.fc2.forward(gelu(this.fc1.forward(this.norm2.forward(h))))) as tf.Tensor3D;
  }
}

const TUNED: readonly DecoderProjection[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** V2's bias and scale on one Linear of the LLM: y = scale ⊙ (Wx + bias). */
class BiasScale extends Module {
  readonly bias: tf.Variable<tf.Rank.R1>;
  readonly scale: tf.Variable<tf.Rank.R1>;
  constructor(width: number) {
    super();
    this.bias = this.param('bias', tf.zeros([width]) as tf.Tensor1D);
    this.scale = this.param('scale', tf.ones([width]) as tf.Tensor1D);
  }
  forward(y: tf.Tensor3D): tf.Tensor3D {
    return tf.mul(tf.add(y, this.bias), this.scale) as tf.Tensor3D;
  }
}

/** What one LLM layer holds: its gate (per head, 0 at init) when prompted, and its bias/scale pairs. */
class AdaptedLayer extends Module {
  readonly gate?: tf.Variable<tf.Rank.R1>;
  readonly tuned = new Map<DecoderProjection, BiasScale>();
  constructor(prompted: boolean, heads: number) {
    super();
    if (prompted) this.gate = this.param('gate', tf.zeros([heads]) as tf.Tensor1D);
  }
  tune(which: DecoderProjection, width: number): void {
    this.tuned.set(which, this.module(which, new BiasScale(width)));
  }
}

/** Which LLM layers carry prompts and which of those see the image, from the config and the LLM depth. */
export function promptedLayers(c: LlamaAdapterConfig): { layer: number; visual: boolean }[] {
  const L = c.llmLayers;
  const visual = Math.min(c.visualLayers, L);
  const top = Math.min(c.adapterLayers ?? L - visual, L);
  return Array.from({ length: L }, (_, i) => i)
    .filter((i) => i < visual || i >= L - top)
    .map((layer) => ({ layer, visual: layer < visual }));
}

export class LlamaAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly clip_proj: Linear;
  readonly clip_proj_norm: LayerNorm;
  readonly visual_query: tf.Variable<tf.Rank.R2>;
  readonly visual_blocks: readonly VisualBlock[];
  readonly visual_proj: Linear;
  readonly visual_proj_norm: LayerNorm;
  /** [prompted layers × promptLength, outDim], bottom prompted layer first (V2 `adapter_query`). */
  readonly adapter_query: tf.Variable<tf.Rank.R2>;
  readonly layers: AdaptedLayer[] = [];
  readonly blockHook: DecoderBlockHook;
  private readonly prompted: Map<number, { index: number; visual: boolean }>;

  constructor(
    readonly config: LlamaAdapterConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    const vDim = config.visualDim ?? config.inDim;
    if (vDim % config.visualHeads)
      throw new Error(`llama_adapter: visualDim ${vDim} is not divisible by visualHeads ${config.visualHeads}`);
    this.clip_proj = this.module('clip_proj', new Linear(config.inDim, vDim, { init }));
    this.clip_proj_norm = this.module('clip_proj_norm', new LayerNorm(vDim));
    // nn.Embedding rows, N(0, 1) as in the release.
    this.visual_query = this.param('visual_query', init.normal([config.promptLength, vDim], 1) as tf.Tensor2D);
    const blocks = Array.from(
      { length: config.visualDepth },
      () => new VisualBlock(vDim, config.visualHeads, config.visualMlpRatio, init),
    );
    this.visual_blocks = this.module('visual_blocks', new ModuleList(blocks)).items;
    this.visual_proj = this.module('visual_proj', new Linear(vDim, config.outDim, { init }));
    this.visual_proj_norm = this.module('visual_proj_norm', new LayerNorm(config.outDim));
    const layout = promptedLayers(config);
    this.prompted = new Map(layout.map(({ layer, visual }, index) => [layer, { index, visual }]));
    this.adapter_query = this.param(
      'adapter_query',
      init.normal([Math.max(1, layout.length) * config.promptLength, config.outDim], 1) as tf.Tensor2D,
    );
    if (config.outDim % config.llmHeads)
      throw new Error(`llama_adapter: outDim ${config.outDim} is not divisible by llmHeads ${config.llmHeads}: set llmHeads to the LLM's num_attention_heads`);
    if (config.biasTuning && config.llmIntermediateSize === undefined)
      throw new Error("llama_adapter: biasTuning needs llmIntermediateSize (the LLM's intermediate_size): set it, or biasTuning: false");
    const kvWidth = ((config.llmKeyValueHeads ?? config.llmHeads) * config.outDim) / config.llmHeads;
    const group = this.module('layers', new ModuleGroup());
    for (let i = 0; i < config.llmLayers; i++) {
      const layer = group.add(i, new AdaptedLayer(this.prompted.has(i), config.llmHeads));
      if (config.biasTuning) {
        const widths: Record<string, number> = {
          q_proj: config.outDim,
          k_proj: kvWidth,
          v_proj: kvWidth,
          o_proj: config.outDim,
          gate_proj: config.llmIntermediateSize as number,
          up_proj: config.llmIntermediateSize as number,
          down_proj: config.outDim,
        };
        for (const which of TUNED) layer.tune(which, widths[which] as number);
      }
      this.layers.push(layer);
    }
    this.blockHook = {
      layers: (n) => {
        checkLlmLayers('llama_adapter', config.llmLayers, n);
        return this.layers.map((_, i) => i);
      },
      internals: (i) => this.internals(i),
    };
  }

  numSlots(_layout: FeatureLayout): number {
    return this.config.promptLength;
  }

  /** features [N, tokens, inDim] → the visual query [N, promptLength, outDim] (V2 forward_visual). */
  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => {
      const N = features.shape[0];
      const feats = this.clip_proj_norm.forward(this.clip_proj.forward(features));
      const query = tf.tile(tf.expandDims(this.visual_query, 0), [N, 1, 1]);
      let x = tf.concat([query, feats], 1) as tf.Tensor3D;
      for (const block of this.visual_blocks) x = block.forward(x);
      const kept = tf.slice(x, [0, 0, 0], [-1, this.config.promptLength, -1]);
      return this.visual_proj_norm.forward(this.visual_proj.forward(kept)) as tf.Tensor3D;
    });
  }

  private internals(i: number): DecoderBlockInternals {
    const layer = this.layers[i] as AdaptedLayer;
    const slot = this.prompted.get(i);
    const out: DecoderBlockInternals = {};
    if (layer.tuned.size)
      out.project = (which, x, base) => {
        const pair = layer.tuned.get(which);
        const y = base(x);
        if (pair && y.shape[2] !== pair.bias.shape[0])
          throw new Error(
            `llama_adapter: the LLM's ${which} gives ${y.shape[2]} features, the tuned bias has ${pair.bias.shape[0]}: set llmKeyValueHeads / llmIntermediateSize to the LLM's`,
          );
        return pair ? pair.forward(y) : y;
      };
    if (slot && layer.gate)
      out.attentionExtra = (q, parts, ctx) => this.promptAttention(q, parts, ctx, slot, layer.gate as tf.Variable);
    if (this.config.hideSlots)
      out.keyMask = (mask, { batch, keys }, ctx) =>
        hideSlotPositions(mediaOf(ctx, this.config.modality), mask, batch, keys);
    return out;
  }

  /** tanh(gate) · softmax(q Kᵀ/√d) V over this layer's prompts (+ the sample's visual query in visual layers). */
  private promptAttention(
    q: tf.Tensor4D,
    parts: DecoderAttentionParts,
    ctx: DecoderBlockContext,
    slot: { index: number; visual: boolean },
    gate: tf.Variable,
  ): tf.Tensor4D {
    const [B, H] = q.shape;
    if (H !== this.config.llmHeads)
      throw new Error(`llama_adapter: the LLM has ${H} attention heads but llmHeads is ${this.config.llmHeads}: set llmHeads to ${H}`);
    const P = this.config.promptLength;
    const D = parts.headDim;
    let prompt: tf.Tensor3D = tf.tile(
      tf.expandDims(tf.slice(this.adapter_query, [slot.index * P, 0], [P, -1]), 0),
      [B, 1, 1],
    ) as tf.Tensor3D;
    const media = slot.visual ? mediaOf(ctx, this.config.modality) : undefined;
    if (media) prompt = tf.add(prompt, this.visualQueryPerSample(media, B)) as tf.Tensor3D;
    const heads = (x: tf.Tensor) => permute(reshape(x, [B, P, parts.numKeyValueHeads, D]), [0, 2, 1, 3]) as tf.Tensor4D;
    const y = attention(q, heads(parts.keys(prompt)), heads(parts.values(prompt)), {});
    return tf.mul(y, tf.reshape(tf.tanh(gate), [1, H, 1, 1])) as tf.Tensor4D;
  }

  /** [B, P, hidden]: each sample's visual query, summed over its items (zeros for a sample with none). */
  private visualQueryPerSample(media: NonNullable<ReturnType<typeof mediaOf>>, batch: number): tf.Tensor3D {
    const table = sampleSlots(media, batch);
    const P = this.config.promptLength;
    const S = table.shape[1];
    if (S % P) return tf.slice(table, [0, 0, 0], [-1, P, -1]) as tf.Tensor3D;
    return tf.sum(tf.reshape(table, [batch, S / P, P, this.outDim]), 1) as tf.Tensor3D;
  }
}
