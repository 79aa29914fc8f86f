// Contract between decoders (llm/), multimodal composition and generation: all speak in embeddings so
// media features can be spliced before the decoder runs.
import type * as tf from '@tensorflow/tfjs-core';

/** Per-layer key/value cache. `length` = positions already stored; owner disposes with dispose(). */
export interface KVCache {
  readonly batch: number;
  readonly length: number;
  dispose(): void;
}

export interface DecoderInputs {
  /** [B, T, hidden] token (or spliced media) embeddings. */
  inputsEmbeds: tf.Tensor3D;
  /** [B, S] with S = cache length + T: 1 = real token, 0 = padding (left padding for batched generation). */
  attentionMask?: tf.Tensor2D;
  /** [B, T] int32 absolute positions for RoPE; default cache.length + [0..T). */
  positionIds?: tf.Tensor2D;
  /** When given, keys/values of this call are appended to it (decode). */
  cache?: KVCache;
}

export interface DecoderOutputs {
  /** [B, T, hidden] last hidden state after the final norm (heads read it at their trigger tokens). */
  hidden: tf.Tensor3D;
}

/** A decoder-only language model. */
export interface CausalLM {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly maxPositions: number;
  /** ids [B, T] int32 → [B, T, hidden]. */
  embed(ids: tf.Tensor2D): tf.Tensor3D;
  forward(inputs: DecoderInputs): DecoderOutputs;
  /** hidden [B, T, hidden] → logits [B, T, vocab]. */
  lmHead(hidden: tf.Tensor3D): tf.Tensor3D;
  /**
   * Inference: the LM head reads int8 rows (one float scale each) instead of float32 weights, a quarter of the
   * bytes a decode step streams; null restores float32. Optional: LMs without it keep float32.
   */
  quantizeLmHead?(mode: 'int8' | null): void;
  createCache(batch: number): KVCache;
}
