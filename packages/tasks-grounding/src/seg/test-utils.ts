// Test helpers of the [SEG] head: a tiny head bound to a tiny real ViT, deterministic inputs, and central
// finite differences (float32: h = 1e-2 on O(1) losses).
import { Tokenizer, tf } from '@vistune/core';
import { VisionTransformer } from '@vistune/encoders';
import { lisaSegHeadOptions, lisaSegHeadSchema } from './config.js';
import { LisaSegHead } from './head.js';

/** Deterministic values in about [-1, 1]. */
export function det(shape: number[], seed = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9),
    shape,
  );
}

export const TINY_IMAGE = 16;
export const TINY_LLM_HIDDEN = 12;
/** A 16-px CLIP tower's architecture (HF vision_config fields without model_type): patch 4 → 4×4 grid. */
export const TINY_VISION = {
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  image_size: TINY_IMAGE,
  patch_size: 4,
};

/** A 16-px CLIP ViT (patch 4 → 4×4 grid) and a lisa_seg head reading it (decoder dim 8, 2 heads, 1 block). */
export function tinyHead(overrides: { pixelSkip?: boolean; seed?: number } = {}): {
  head: LisaSegHead;
  encoder: VisionTransformer;
} {
  const encoder = VisionTransformer.fromHFConfig(
    { model_type: 'clip_vision_model', ...TINY_VISION },
    { seed: 3 },
  );
  const config = lisaSegHeadSchema.parse({
    triggerTokenId: 9,
    llmHiddenSize: TINY_LLM_HIDDEN,
    visionHiddenSize: 16,
    decoder: {
      dim: 8,
      heads: 2,
      depth: 1,
      mlpDim: 16,
      crossAttentionDownsample: 1,
      upscaleChannels: [4, 4],
      pixelSkip: overrides.pixelSkip ?? false,
    },
    seed: overrides.seed ?? 5,
  });
  const head = new LisaSegHead(lisaSegHeadOptions(config));
  head.bindVision(encoder);
  return { head, encoder };
}

/** (f(x + h) − f(x − h)) / 2h at chosen flat indices of a variable (its value restored after). */
export function numericVariableGrad(
  f: () => number,
  v: tf.Variable,
  indices: readonly number[],
  h = 1e-2,
): number[] {
  const base = v.dataSync().slice();
  const at = (i: number, delta: number) => {
    const shifted = base.slice();
    shifted[i] = (shifted[i] as number) + delta;
    tf.tidy(() => v.assign(tf.tensor(shifted, v.shape)));
    return f();
  };
  const out = indices.map((i) => (at(i, h) - at(i, -h)) / (2 * h));
  tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
  return out;
}

/** Largest |a − b| / (atol + rtol · max|b|): ≤ 1 passes. */
export function closeness(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 3e-2,
  atol = 2e-3,
): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i] as number));
  let worst = 0;
  for (let i = 0; i < actual.length; i++)
    worst = Math.max(
      worst,
      Math.abs((actual[i] as number) - (expected[i] as number)) / (atol + rtol * scale),
    );
  return worst;
}

/**
 * A word-level tokenizer of exactly `size` tokens (ids 0–4: <unk> <s> </s> <pad> <image>, then `w5`, `w6`, …):
 * BPE without merges, as @huggingface/tokenizers has no WordLevel model. Enough for tests that only need ids.
 */
export function tinyTokenizer(size: number): Tokenizer {
  const specials = ['<unk>', '<s>', '</s>', '<pad>', '<image>'];
  const tokens = [
    ...specials,
    ...Array.from({ length: size - specials.length }, (_, i) => `w${i + specials.length}`),
  ];
  const flags = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const added = specials.map((content, id) => ({ id, content, ...flags }));
  return Tokenizer.fromJSON(
    {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' },
      post_processor: null,
      decoder: null,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: '<unk>',
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: true,
        vocab: Object.fromEntries(tokens.map((t, id) => [t, id])),
        merges: [],
      },
    },
    { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>', add_bos_token: true },
  );
}
