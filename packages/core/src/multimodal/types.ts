// Composition contracts: what a MultimodalModel needs from encoders, adapters and heads, whatever the modality.
// Data flow per modality: items → encoder (hidden states per layer) → FeatureSelect → adapter → slots that
// overwrite the modality's placeholder tokens in the text embeddings (the splice) → LLM → heads.
import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../llm/types.js';
import type { Module } from '../nn/module.js';

/**
 * How the tokens of one encoded item are laid out, known from the item's shape alone (so a processor can
 * expand placeholders before anything runs). Tokens are `prefixTokens` (CLS, registers) followed by the body:
 * `frames × grid[0] × grid[1]` row-major for images/video, or a plain sequence/set (points, audio).
 */
export interface FeatureLayout {
  /** All tokens of one item: prefixTokens + body. */
  readonly tokens: number;
  /** Leading non-spatial tokens (CLIP's CLS = 1, SigLIP = 0); `strategy: 'default'` drops them. */
  readonly prefixTokens: number;
  /** [rows, cols] of the body for 2-D inputs; pixel shuffle and pooling adapters need it. */
  readonly grid?: readonly [number, number];
  /** Frames of a video body (each frame a grid); absent = 1. */
  readonly frames?: number;
}

export interface EncodeOptions {
  /**
   * Which entries of HF `hidden_states` to return, in this order: 0 = embeddings (after any pre-norm),
   * i = output of layer i, negative counts from the end (-1 = last layer, never post-normed).
   * Default [-1]. An encoder may stop after the deepest requested layer.
   */
  hiddenStates?: readonly number[];
}

export interface EncoderOutput {
  /** One [N, layout.tokens, hiddenSize] tensor per requested index, in request order. */
  hiddenStates: tf.Tensor3D[];
  /** Layout of each of the N items (all items of one forward share it). */
  layout: FeatureLayout;
}

/**
 * Any encoder a composition can use: ViT for images, ViT-per-frame for video, a point or audio encoder.
 * `Batch` is what forward takes for N items (default: the items stacked on a new leading axis,
 * e.g. pixel_values [N, 3, H, W], video [N, T, 3, H, W], points [N, P, C], log-mel [N, mels, frames]).
 */
export interface ModalityEncoder<Batch = tf.Tensor> extends Module {
  /** Width of each hidden state. */
  readonly hiddenSize: number;
  /** Entries of `hidden_states`: layers + 1. */
  readonly numHiddenStates: number;
  /** Token layout for one item of this shape (without the batch axis), from shapes only. */
  featureLayout(itemShape: readonly number[]): FeatureLayout;
  forward(batch: Batch, opts?: EncodeOptions): EncoderOutput;
}

/**
 * Which encoder features the adapter sees (HF `vision_feature_layer` / `vision_feature_select_strategy`).
 * A list of layers is concatenated on the feature axis (adapter inDim = hiddenSize × layers).
 */
export interface FeatureSelect {
  readonly layer: number | readonly number[];
  /** 'default' drops the layout's prefix tokens (CLS), 'full' keeps them. */
  readonly strategy: 'default' | 'full';
}

/** Text the instruction-aware adapters see (Q-Former with instruction, InstructBLIP): one row per item. */
export interface AdapterTextContext {
  /** [N, T, llmHidden] token embeddings of the sample each item belongs to (placeholder rows included). */
  embeds: tf.Tensor3D;
  /** [N, T] 1 = text token of that sample, 0 = placeholder, padding or (in training) a supervised answer token. */
  mask: tf.Tensor2D;
  /** [N, T] int32 token ids of those samples (an instruction-aware Q-Former embeds them in its own table). */
  ids?: tf.Tensor2D;
}

export interface AdapterContext {
  /** Layout of the features given to the adapter, after FeatureSelect (prefixTokens 0 when dropped). */
  layout: FeatureLayout;
  /** Present only when the adapter declares `usesText`. */
  text?: AdapterTextContext;
}

/** Spliced media as an LLM-internal adapter sees it: every slot of one modality in the batch. */
export interface SplicedMedia {
  /** [slots, llmHidden] adapter outputs of the batch, sample-major, in placeholder order. */
  slots: tf.Tensor2D;
  /** For each slot row: its sample and its position in the sequence. */
  sample: Int32Array;
  position: Int32Array;
}

export interface DecoderBlockContext {
  layerIndex: number;
  /** [B, S] key mask of the call, when the LLM has one. */
  attentionMask?: tf.Tensor2D;
  /** The current call's media by modality name (kept across decode steps; empty for text-only calls). */
  media: ReadonlyMap<string, SplicedMedia>;
  /** Positions already in the KV cache: the call's token t sits at sequence position pastLength + t. */
  pastLength: number;
}

/** One decoder block seen as a function of the hidden states (what a block hook wraps). */
export type DecoderBlockFn = (hidden: tf.Tensor3D, ctx: DecoderBlockContext) => tf.Tensor3D;

/**
 * The linear parts of a decoder block a hook may compute itself: `mlp` = the whole feed-forward, `gate_proj`,
 * `up_proj`, `down_proj` = its Linears (CogVLM's visual expert replaces each at the image positions).
 */
export type DecoderProjection =
  | 'q_proj'
  | 'k_proj'
  | 'v_proj'
  | 'o_proj'
  | 'mlp'
  | 'gate_proj'
  | 'up_proj'
  | 'down_proj';

/** The attention of the block a hook runs in, for hooks that add keys/values of their own (adaption prompts). */
export interface DecoderAttentionParts {
  readonly numHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  /** The layer's own k_proj / v_proj: x [B, P, hidden] → [B, P, numKeyValueHeads·headDim] (no RoPE). */
  keys(x: tf.Tensor3D): tf.Tensor3D;
  values(x: tf.Tensor3D): tf.Tensor3D;
}

/**
 * What a hook changes inside a block rather than around it; every member is optional and an absent one
 * leaves the block's own maths untouched (several hooks on one block compose in installation order).
 */
export interface DecoderBlockInternals {
  /** Replaces the attention's input after input_layernorm (MM-Adapter before attention). */
  attentionInput?(normed: tf.Tensor3D, ctx: DecoderBlockContext): tf.Tensor3D;
  /** Replaces the feed-forward's input after post_attention_layernorm (MM-Adapter before the MLP). */
  mlpInput?(normed: tf.Tensor3D, ctx: DecoderBlockContext): tf.Tensor3D;
  /**
   * Computes one linear part in place of the block's own `base` (CogVLM's visual expert: other weights at the
   * image positions). x [B, T, in] → [B, T, out].
   */
  project?(
    which: DecoderProjection,
    x: tf.Tensor3D,
    base: (x: tf.Tensor3D) => tf.Tensor3D,
    ctx: DecoderBlockContext,
  ): tf.Tensor3D;
  /**
   * Added to the attention's per-head output before o_proj (LLaMA-Adapter's gated attention over adaption
   * prompts). q [B, heads, T, headDim] after RoPE → [B, heads, T, headDim].
   */
  attentionExtra?(q: tf.Tensor4D, parts: DecoderAttentionParts, ctx: DecoderBlockContext): tf.Tensor4D;
  /**
   * Replaces the attention's key mask [batch, keys] over all keys = pastLength + T positions (1 = attend;
   * `mask` absent = all ones): LLaMA-Adapter hides the image slots it reads as prompts from the text.
   */
  keyMask?(
    mask: tf.Tensor2D | undefined,
    shape: { batch: number; keys: number },
    ctx: DecoderBlockContext,
  ): tf.Tensor2D;
}

/**
 * For adapters that act inside the LLM (MM-Adapter, Flamingo gated cross-attention, CogVLM visual expert,
 * LLaMA-Adapter): they say which blocks they touch and either wrap the whole block (`wrap`: a function of the
 * hidden states), reach inside it (`internals`), or both. Their parameters live in the adapter module.
 */
export interface DecoderBlockHook {
  /** LLM layer indices to wrap, given the LLM's depth. */
  layers(numLayers: number): number[];
  wrap?(block: DecoderBlockFn, layerIndex: number): DecoderBlockFn;
  internals?(layerIndex: number): DecoderBlockInternals;
}

/** A CausalLM whose blocks can be wrapped; adapters with a `blockHook` require one. */
export interface BlockWrappableLM extends CausalLM {
  readonly numLayers: number;
  /**
   * Installs `wrap` around the chosen blocks; the LLM calls wrapped blocks with its own context and the
   * media of the current call (set with `setMedia`). Returns a function that uninstalls it.
   */
  wrapBlocks(hook: DecoderBlockHook): () => void;
  setMedia(media: ReadonlyMap<string, SplicedMedia>): void;
}

/**
 * Encoder features [N, tokens, inDim] → LLM-space slots [N, numSlots(layout), outDim].
 * Every item yields the same number of slots for the same layout, so placeholder counts are known upfront.
 */
export interface Adapter extends Module {
  readonly inDim: number;
  readonly outDim: number;
  numSlots(layout: FeatureLayout): number;
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D;
  /** true: the model passes `ctx.text` (embeddings of the item's sample). */
  readonly usesText?: boolean;
  /** Present for adapters that also (or only) act inside the LLM's blocks. */
  readonly blockHook?: DecoderBlockHook;
}

/** Where a head reads: its trigger token's own hidden state (0) or the one that predicts it (-1, LISA). */
export type HeadReadOffset = 0 | -1;

export interface HeadInput<Target> {
  /** [K, llmHidden] last hidden states at the K trigger occurrences of the batch, sample-major. */
  hidden: tf.Tensor2D;
  /** Sample index and sequence position of each of the K rows (the position read, after the offset). */
  sample: Int32Array;
  position: Int32Array;
  /** Training targets, one per trigger occurrence (same order), when the batch carries them. */
  targets?: readonly Target[];
  /** The batch's raw media items by modality, per sample (a mask decoder re-reads the image). */
  media?: ReadonlyMap<string, readonly (readonly tf.Tensor[])[]>;
}

export type HeadOutput<Output extends tf.TensorContainer> = {
  output: Output;
  /** Unweighted loss term; the model adds lossWeight × loss to the LM loss. */
  loss?: tf.Scalar;
};

/** Reads the LLM's last hidden states at its trigger token ([SEG], [IMG0]) and produces a structured output. */
export interface Head<Target = unknown, Output extends tf.TensorContainer = tf.Tensor> extends Module {
  readonly name: string;
  readonly triggerTokenId: number;
  readonly readOffset: HeadReadOffset;
  readonly lossWeight: number;
  forward(input: HeadInput<Target>): HeadOutput<Output>;
  /**
   * The registry config (kind `head`, with its `type`) that recreates this head; savers record it next to the
   * weights (saveLlava: config.json `vistune_heads`). Absent: the head cannot be saved.
   */
  headConfig?(): HeadConfig;
  /** Called by loaders once the model's modalities exist (a mask decoder binds the image encoder it reads). */
  bindModalities?(modalities: ReadonlyMap<string, { readonly encoder: ModalityEncoder<unknown> }>): void;
}

/** A head's registry config as saved with a model: `type` names the registry entry (kind `head`). */
export type HeadConfig = { readonly type: string } & Readonly<Record<string, unknown>>;
