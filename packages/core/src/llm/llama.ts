// LLaMA-family decoder (LLaMA, Qwen2, Mistral), the same maths and parameter names as transformers'
// LlamaForCausalLM: token embedding → N × [RMSNorm → GQA attention with RoPE → residual, RMSNorm → SwiGLU MLP
// → residual] → RMSNorm → lm_head.

import * as tf from '@tensorflow/tfjs-core';
import { hostValues } from '../backend/host-values.js';
import type {
  BlockWrappableLM,
  DecoderAttentionParts,
  DecoderBlockContext,
  DecoderBlockFn,
  DecoderBlockHook,
  DecoderBlockInternals,
  DecoderProjection,
  SplicedMedia,
} from '../multimodal/types.js';
import { Embedding } from '../nn/embedding.js';
import { Initializer } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { RMSNorm } from '../nn/norm.js';
import {
  addSameShape,
  attention,
  type Int8Rows,
  int8Linear,
  linear,
  quantizeRowsInt8,
  reshape,
  siluTimes,
} from '../ops/index.js';
import type { LlamaConfig } from './config.js';
import { LlamaKVCache } from './kv-cache.js';
import { applyRotary, type RotaryAngles, RotaryEmbedding } from './rope.js';
import type { DecoderInputs, DecoderOutputs, KVCache } from './types.js';

/** What every layer of one forward shares. */
interface LayerContext {
  angles: RotaryAngles;
  /** [B, S] 1 = attend, 0 = padding; absent when nothing is padded. */
  keyMask?: tf.Tensor2D;
  cache?: LlamaKVCache;
  /** Positions already in the cache (the query offset for the causal mask). */
  pastLength: number;
}

/** Block hooks reaching inside one layer (absent for plain layers: the default path runs no hook code). */
interface LayerHooks {
  internals: readonly DecoderBlockInternals[];
  block: DecoderBlockContext;
}

/** `base(x)`, or the hooks' replacement of that projection (nested in installation order). */
function project(
  hooks: LayerHooks | undefined,
  which: DecoderProjection,
  x: tf.Tensor3D,
  base: (x: tf.Tensor3D) => tf.Tensor3D,
): tf.Tensor3D {
  if (!hooks) return base(x);
  let f = base;
  for (const h of hooks.internals) {
    const inner = f;
    if (h.project) f = (y) => (h.project as NonNullable<typeof h.project>)(which, y, inner, hooks.block);
  }
  return f(x);
}

/** One Linear of the block, or the hooks' replacement of it. */
function hookedLinear(
  hooks: LayerHooks | undefined,
  which: DecoderProjection,
  layer: Linear,
  x: tf.Tensor3D,
): tf.Tensor3D {
  return project(hooks, which, x, (y) => layer.forward(y) as tf.Tensor3D);
}

/** The normed input after every hook's transform of it (`attentionInput` / `mlpInput`). */
function transformInput(
  hooks: LayerHooks | undefined,
  which: 'attentionInput' | 'mlpInput',
  normed: tf.Tensor3D,
): tf.Tensor3D {
  if (!hooks) return normed;
  return hooks.internals.reduce((x, h) => h[which]?.(x, hooks.block) ?? x, normed);
}

/** The key mask after every hook's `keyMask` (the call's own mask when no hook replaces it). */
function hookedKeyMask(
  hooks: LayerHooks | undefined,
  mask: tf.Tensor2D | undefined,
  shape: { batch: number; keys: number },
): tf.Tensor2D | undefined {
  if (!hooks) return mask;
  return hooks.internals.reduce<tf.Tensor2D | undefined>(
    (m, h) => (h.keyMask ? h.keyMask(m, shape, hooks.block) : m),
    mask,
  );
}

/** HF ModuleList: children named 0..n-1. */
class ModuleList<M extends Module> extends Module {
  constructor(readonly items: M[]) {
    super();
    for (const [i, m] of items.entries()) this.module(i, m);
  }
}

/** [B, T, heads·D] → [B, heads, T, D] (for T = 1 the same memory order: a free reshape). */
function splitHeads(x: tf.Tensor, heads: number, headDim: number): tf.Tensor4D {
  const [B, T] = x.shape;
  if (T === 1) return reshape(x, [B, heads, 1, headDim]) as tf.Tensor4D;
  return tf.transpose(reshape(x, [B, T, heads, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, heads, T, D] → [B, T, heads·D] (free for T = 1, as above). */
function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [B, H, T, D] = x.shape;
  if (T === 1) return reshape(x, [B, 1, H * D]) as tf.Tensor3D;
  return reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]) as tf.Tensor3D;
}

export class LlamaAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;

  constructor(
    private readonly c: LlamaConfig,
    readonly layerIndex: number,
    init: Initializer,
  ) {
    super();
    const qDim = c.numAttentionHeads * c.headDim;
    const kvDim = c.numKeyValueHeads * c.headDim;
    this.qProj = this.module('q_proj', new Linear(c.hiddenSize, qDim, { init, bias: c.qkvBias }));
    this.kProj = this.module('k_proj', new Linear(c.hiddenSize, kvDim, { init, bias: c.qkvBias }));
    this.vProj = this.module('v_proj', new Linear(c.hiddenSize, kvDim, { init, bias: c.qkvBias }));
    this.oProj = this.module('o_proj', new Linear(qDim, c.hiddenSize, { init, bias: c.oProjBias }));
  }

  forward(x: tf.Tensor3D, ctx: LayerContext, hooks?: LayerHooks): tf.Tensor3D {
    const { numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: D } = this.c;
    const T = x.shape[1];
    const linear = (which: DecoderProjection, layer: Linear, input: tf.Tensor3D) =>
      hookedLinear(hooks, which, layer, input);
    const q = applyRotary(splitHeads(linear('q_proj', this.qProj, x), H, D), ctx.angles);
    let k = applyRotary(splitHeads(linear('k_proj', this.kProj, x), Hkv, D), ctx.angles);
    let v = splitHeads(linear('v_proj', this.vProj, x), Hkv, D);
    if (ctx.cache) ({ keys: k, values: v } = ctx.cache.append(this.layerIndex, k, v));
    const keyMask = hookedKeyMask(hooks, ctx.keyMask, { batch: k.shape[0], keys: k.shape[2] });
    // GQA is the op layer's: it groups the query heads of each key/value head, never copying K/V.
    let y = attention(q, k, v, { causal: T > 1, queryOffset: ctx.pastLength, keyMask });
    for (const h of hooks?.internals ?? []) {
      if (h.attentionExtra)
        y = tf.add(y, h.attentionExtra(q, this.parts(), (hooks as LayerHooks).block)) as tf.Tensor4D;
    }
    return linear('o_proj', this.oProj, mergeHeads(y));
  }

  /** What an `attentionExtra` hook may use of this attention. */
  private parts(): DecoderAttentionParts {
    return {
      numHeads: this.c.numAttentionHeads,
      numKeyValueHeads: this.c.numKeyValueHeads,
      headDim: this.c.headDim,
      keys: (x) => this.kProj.forward(x) as tf.Tensor3D,
      values: (x) => this.vProj.forward(x) as tf.Tensor3D,
    };
  }
}

/** SwiGLU: down(silu(gate(x)) · up(x)). */
export class LlamaMLP extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  constructor(c: LlamaConfig, init: Initializer) {
    super();
    this.gateProj = this.module(
      'gate_proj',
      new Linear(c.hiddenSize, c.intermediateSize, { init, bias: c.mlpBias }),
    );
    this.upProj = this.module(
      'up_proj',
      new Linear(c.hiddenSize, c.intermediateSize, { init, bias: c.mlpBias }),
    );
    this.downProj = this.module(
      'down_proj',
      new Linear(c.intermediateSize, c.hiddenSize, { init, bias: c.mlpBias }),
    );
  }

  /** `hooks` may replace gate_proj / up_proj / down_proj (absent: the plain feed-forward). */
  forward(x: tf.Tensor3D, hooks?: LayerHooks): tf.Tensor3D {
    if (!hooks)
      return this.downProj.forward(
        siluTimes(this.gateProj.forward(x), this.upProj.forward(x)),
      ) as tf.Tensor3D;
    const gate = hookedLinear(hooks, 'gate_proj', this.gateProj, x);
    const inner = siluTimes(gate, hookedLinear(hooks, 'up_proj', this.upProj, x)) as tf.Tensor3D;
    return hookedLinear(hooks, 'down_proj', this.downProj, inner);
  }
}

export class LlamaDecoderLayer extends Module {
  readonly inputLayernorm: RMSNorm;
  readonly selfAttn: LlamaAttention;
  readonly postAttentionLayernorm: RMSNorm;
  readonly mlp: LlamaMLP;

  constructor(c: LlamaConfig, layerIndex: number, init: Initializer) {
    super();
    this.selfAttn = this.module('self_attn', new LlamaAttention(c, layerIndex, init));
    this.mlp = this.module('mlp', new LlamaMLP(c, init));
    this.inputLayernorm = this.module('input_layernorm', new RMSNorm(c.hiddenSize, c.rmsNormEps));
    this.postAttentionLayernorm = this.module(
      'post_attention_layernorm',
      new RMSNorm(c.hiddenSize, c.rmsNormEps),
    );
  }

  /** `hooks`: block hooks reaching inside this layer (DecoderBlockInternals); absent = the plain block. */
  forward(x: tf.Tensor3D, ctx: LayerContext, hooks?: LayerHooks): tf.Tensor3D {
    const attnIn = transformInput(hooks, 'attentionInput', this.inputLayernorm.forward(x) as tf.Tensor3D);
    const h = addSameShape(x, this.selfAttn.forward(attnIn, ctx, hooks)) as tf.Tensor3D;
    const mlpIn = transformInput(hooks, 'mlpInput', this.postAttentionLayernorm.forward(h) as tf.Tensor3D);
    return addSameShape(
      h,
      project(hooks, 'mlp', mlpIn, (y) => this.mlp.forward(y, hooks)),
    ) as tf.Tensor3D;
  }
}

/** HF LlamaModel: the decoder without its output head. */
export class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: LlamaDecoderLayer[];
  readonly norm: RMSNorm;

  constructor(c: LlamaConfig, init: Initializer) {
    super();
    const padRow = c.padTokenId !== null && c.padTokenId < c.vocabSize ? c.padTokenId : undefined;
    this.embedTokens = this.module(
      'embed_tokens',
      new Embedding(c.vocabSize, c.hiddenSize, { init, paddingIdx: padRow }),
    );
    const layers = Array.from({ length: c.numHiddenLayers }, (_, i) => new LlamaDecoderLayer(c, i, init));
    this.layers = this.module('layers', new ModuleList(layers)).items;
    this.norm = this.module('norm', new RMSNorm(c.hiddenSize, c.rmsNormEps));
  }
}

export interface LlamaInitOptions {
  /** Seed of the random init (HF: weights ~ N(0, initializer_range²), biases 0, norms 1). Default 0. */
  seed?: number;
  /** false: all-zero weights, for a model whose weights are loaded right after (skips the sampling). */
  random?: boolean;
}

/** HF LlamaForCausalLM (also Qwen2ForCausalLM / MistralForCausalLM) with HF parameter names. */
export class LlamaForCausalLM extends Module implements BlockWrappableLM {
  readonly model: LlamaModel;
  /** lm_head; absent when tied to embed_tokens. */
  readonly head: Linear | undefined;
  /** Set by quantizeLmHead('int8'): the head's rows in int8 (inference only). */
  private int8Head: Int8Rows | null = null;
  private readonly rope: RotaryEmbedding;
  private readonly blockHooks: { hook: DecoderBlockHook; layers: Set<number> }[] = [];
  private media: ReadonlyMap<string, SplicedMedia> = new Map();

  constructor(
    readonly config: LlamaConfig,
    opts: LlamaInitOptions = {},
  ) {
    super();
    const init = new Initializer({
      seed: opts.seed ?? 0,
      std: config.initializerRange,
      random: opts.random ?? true,
    });
    this.model = this.module('model', new LlamaModel(config, init));
    this.head = config.tieWordEmbeddings
      ? undefined
      : this.module('lm_head', new Linear(config.hiddenSize, config.vocabSize, { init, bias: false }));
    this.rope = new RotaryEmbedding(
      config.headDim,
      config.ropeTheta,
      config.maxPositionEmbeddings,
      config.maxPositionsFrom,
    );
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }
  get hiddenSize(): number {
    return this.config.hiddenSize;
  }
  get maxPositions(): number {
    return this.config.maxPositionEmbeddings;
  }

  get numLayers(): number {
    return this.config.numHiddenLayers;
  }

  /** Adapters acting inside the decoder (BlockWrappableLM): wrap the chosen blocks until the returned undo. */
  wrapBlocks(hook: DecoderBlockHook): () => void {
    const entry = { hook, layers: new Set(hook.layers(this.numLayers)) };
    const bad = [...entry.layers].filter((i) => !(Number.isInteger(i) && i >= 0 && i < this.numLayers));
    if (bad.length)
      throw new Error(`wrapBlocks: layer indices ${bad.join(', ')} are outside [0, ${this.numLayers})`);
    this.blockHooks.push(entry);
    return () => {
      const at = this.blockHooks.indexOf(entry);
      if (at >= 0) this.blockHooks.splice(at, 1);
    };
  }

  /** Media the wrapped blocks see from now on (kept across decode steps). */
  setMedia(media: ReadonlyMap<string, SplicedMedia>): void {
    this.media = media;
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return this.model.embedTokens.forward(ids) as tf.Tensor3D;
  }

  createCache(batch: number): LlamaKVCache {
    return new LlamaKVCache(batch, this.config.numHiddenLayers);
  }

  forward(inputs: DecoderInputs): DecoderOutputs {
    const { inputsEmbeds, attentionMask, positionIds } = inputs;
    const cache = this.checkCache(inputs.cache);
    const [B, T, hidden] = inputsEmbeds.shape;
    if (hidden !== this.config.hiddenSize) {
      throw new Error(
        `LlamaForCausalLM.forward: inputsEmbeds is [${inputsEmbeds.shape}], expected hidden size ${this.config.hiddenSize}`,
      );
    }
    const pastLength = cache?.length ?? 0;
    const total = pastLength + T;
    if (attentionMask && (attentionMask.shape[0] !== B || attentionMask.shape[1] !== total)) {
      throw new Error(
        `LlamaForCausalLM.forward: attentionMask is [${attentionMask.shape}], expected [${B}, ${total}] (cached ${pastLength} + new ${T})`,
      );
    }
    if (positionIds && (positionIds.shape[0] !== B || positionIds.shape[1] !== T)) {
      throw new Error(
        `LlamaForCausalLM.forward: positionIds is [${positionIds.shape}], expected [${B}, ${T}]`,
      );
    }
    const hiddenStates = tf.tidy(() => {
      const angles = positionIds
        ? this.rope.gather(positionIds, maxPosition(positionIds) + 1)
        : this.rope.range(pastLength, T);
      const ctx: LayerContext = { angles, keyMask: attentionMask, cache, pastLength };
      let h = inputsEmbeds;
      this.model.layers.forEach((layer, i) => {
        const blockCtx: DecoderBlockContext = { layerIndex: i, attentionMask, media: this.media, pastLength };
        const hooks = this.blockHooks.filter(({ layers }) => layers.has(i)).map(({ hook }) => hook);
        const internals = hooks.flatMap((hook) => (hook.internals ? [hook.internals(i)] : []));
        const inner = internals.length ? { internals, block: blockCtx } : undefined;
        let block: DecoderBlockFn = (x) => layer.forward(x, ctx, inner);
        for (const hook of hooks) if (hook.wrap) block = hook.wrap(block, i);
        h = block(h, blockCtx);
      });
      return this.model.norm.forward(h) as tf.Tensor3D;
    });
    cache?.advance(T);
    return { hidden: hiddenStates };
  }

  /** hidden [B, T, hidden] → logits [B, T, vocab] (tied: the embedding table is the head). */
  lmHead(hidden: tf.Tensor3D): tf.Tensor3D {
    if (this.int8Head) return int8Linear(hidden, this.int8Head) as tf.Tensor3D;
    const weight = this.head ? this.head.weight : this.model.embedTokens.weight;
    return linear(hidden, weight) as tf.Tensor3D;
  }

  /** The head's weight (tied: the embedding table) as int8 rows for inference; null returns to float32. */
  quantizeLmHead(mode: 'int8' | null): void {
    if (this.int8Head) tf.dispose([this.int8Head.q, this.int8Head.scales]);
    this.int8Head = null;
    if (mode === null) return;
    if (!['wasm', 'cpu'].includes(tf.getBackend()))
      throw new Error(
        `quantizeLmHead('int8'): the int8 product runs on the wasm and cpu backends, this model is on ${tf.getBackend()}: use --backend wasm or keep the head in float32`,
      );
    const weight = this.head ? this.head.weight : this.model.embedTokens.weight;
    this.int8Head = quantizeRowsInt8(
      weight,
      this.head ? 'lm_head.weight' : 'model.embed_tokens.weight (tied head)',
    );
  }

  /** Convenience: ids [B, T] → logits [B, T, vocab] (no cache, no padding). */
  logits(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => this.lmHead(this.forward({ inputsEmbeds: this.embed(ids) }).hidden));
  }

  private checkCache(cache: KVCache | undefined): LlamaKVCache | undefined {
    if (cache === undefined) return undefined;
    if (!(cache instanceof LlamaKVCache)) {
      throw new Error("LlamaForCausalLM.forward: cache must come from this model's createCache()");
    }
    if (cache.numLayers !== this.config.numHiddenLayers) {
      throw new Error(
        `LlamaForCausalLM.forward: cache has ${cache.numLayers} layers, the model ${this.config.numHiddenLayers}`,
      );
    }
    return cache;
  }

  override dispose(): void {
    this.quantizeLmHead(null);
    this.rope.dispose();
    super.dispose();
  }
}

/** Largest position id, read on the host (position ids come from JS arrays; webgpu has no sync read). */
function maxPosition(positionIds: tf.Tensor2D): number {
  let max = 0;
  for (const p of hostValues(positionIds)) if (p > max) max = p;
  return max;
}
