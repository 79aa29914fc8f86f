// Config schemas of the built-in adapters (validated and defaulted by the registry).
import { z } from 'zod';

const dim = z.number().int().positive();
/** Seed of the random init (HF: Linear weights ~ N(0, std²), biases 0); irrelevant when weights are loaded. */
const seed = z.number().int().default(0);
const std = z.number().positive().default(0.02);

export const LinearProjectorConfigSchema = z.strictObject({
  type: z.literal('linear').default('linear'),
  /** Encoder feature width after FeatureSelect (hidden × selected layers). */
  inDim: dim,
  /** LLM hidden size. */
  outDim: dim,
  bias: z.boolean().default(true),
  seed,
  /** HF initializer_range. */
  std,
});
export type LinearProjectorConfig = z.output<typeof LinearProjectorConfigSchema>;

export const MlpProjectorConfigSchema = z.strictObject({
  type: z.enum(['mlp2x_gelu', 'mlp']).default('mlp2x_gelu'),
  inDim: dim,
  outDim: dim,
  /** Number of Linears (LLaVA `mlp{depth}x_gelu`); HF LlavaMultiModalProjector is depth 2. */
  depth: z.number().int().min(1).default(2),
  /** HF `projector_hidden_act` ('gelu' is the exact erf form). */
  act: z.enum(['gelu', 'gelu_pytorch_tanh', 'gelu_new', 'quick_gelu', 'silu', 'relu']).default('gelu'),
  /** HF `multimodal_projector_bias`. */
  bias: z.boolean().default(true),
  seed,
  /** HF initializer_range. */
  std,
});
export type MlpProjectorConfig = z.output<typeof MlpProjectorConfigSchema>;

export const PixelShuffleProjectorConfigSchema = z.strictObject({
  type: z.literal('pixel_shuffle').default('pixel_shuffle'),
  /** Encoder feature width before the shuffle (the Linear sees factor² × inDim). */
  inDim: dim,
  outDim: dim,
  /** nanoVLM `mp_pixel_shuffle_factor` / SmolVLM `scale_factor`. */
  factor: z.number().int().min(1).default(2),
  bias: z.boolean().default(false),
  seed,
  /** HF initializer_range. */
  std,
});
export type PixelShuffleProjectorConfig = z.output<typeof PixelShuffleProjectorConfigSchema>;

export const FilmProjectorConfigSchema = z.strictObject({
  type: z.literal('film_mlp').default('film_mlp'),
  inDim: dim,
  /** LLM hidden size (also the width of the text embeddings that condition the features). */
  outDim: dim,
  act: z.enum(['gelu', 'gelu_pytorch_tanh', 'gelu_new', 'quick_gelu', 'silu', 'relu']).default('gelu'),
  bias: z.boolean().default(true),
  seed,
  /** HF initializer_range. */
  std,
});
export type FilmProjectorConfig = z.output<typeof FilmProjectorConfigSchema>;

const act = z.enum(['gelu', 'gelu_pytorch_tanh', 'gelu_new', 'quick_gelu', 'silu', 'relu']);

/** HF Blip2QFormerConfig fields (camelCase) plus the connector's ends; defaults are BLIP-2's. */
const qformerFields = {
  /** Image feature width (HF `qformer_config.encoder_hidden_size`, the vision hidden size). */
  inDim: dim,
  /** LLM hidden size (`language_projection` output). */
  outDim: dim,
  /** HF `num_query_tokens`: slots per item. */
  numQueryTokens: dim.default(32),
  hiddenSize: dim.default(768),
  numHiddenLayers: dim.default(12),
  numAttentionHeads: dim.default(12),
  intermediateSize: dim.default(3072),
  /** A cross-attention to the image features in layers i with i % frequency == 0. */
  crossAttentionFrequency: dim.default(2),
  hiddenAct: act.default('gelu'),
  layerNormEps: z.number().positive().default(1e-12),
  /** `language_projection` bias (HF always has one). */
  bias: z.boolean().default(true),
  seed,
  std,
};

export const QFormerConfigSchema = z.strictObject({
  type: z.literal('qformer').default('qformer'),
  ...qformerFields,
});
export type QFormerConfig = z.output<typeof QFormerConfigSchema>;

/** The text side of the instruction-aware Q-Former (HF InstructBlipQFormerConfig). */
const instructionFields = {
  /**
   * Q-Former word-embedding rows. In a vistune composition the instruction's ids are the LLM's, so this must
   * be ≥ the LLM vocabulary; HF InstructBLIP uses a BERT vocabulary of 30523.
   */
  vocabSize: dim.default(30523),
  maxPositionEmbeddings: dim.default(512),
  padTokenId: z.number().int().min(0).default(0),
};

export const InstructQFormerConfigSchema = z.strictObject({
  type: z.literal('instructblip_qformer').default('instructblip_qformer'),
  ...qformerFields,
  ...instructionFields,
});
export type InstructQFormerConfig = z.output<typeof InstructQFormerConfigSchema>;

export const BlivaQFormerConfigSchema = z.strictObject({
  type: z.literal('bliva_qformer').default('bliva_qformer'),
  ...qformerFields,
  ...instructionFields,
});
export type BlivaQFormerConfig = z.output<typeof BlivaQFormerConfigSchema>;

/** The LLM's depth, for connectors that add parameters per LLM layer (checked when the hook is installed). */
const llmLayers = dim;
/** The composition's modality whose spliced media an LLM-internal connector reads. */
const modality = z.string().min(1).default('image');

const perceiverFields = {
  inDim: dim,
  outDim: dim,
  /** Latent queries = slots per item (Flamingo 64). */
  numLatents: dim.default(64),
  /** Resampler layers (OpenFlamingo 6). */
  depth: dim.default(6),
  heads: dim.default(8),
  dimHead: dim.default(64),
  ffMult: dim.default(4),
  /** Output Linear into the LLM width (`proj`). */
  bias: z.boolean().default(true),
  seed,
  std,
};

export const PerceiverResamplerConfigSchema = z.strictObject({
  type: z.literal('perceiver_resampler').default('perceiver_resampler'),
  ...perceiverFields,
});
export type PerceiverResamplerConfig = z.output<typeof PerceiverResamplerConfigSchema>;

export const FlamingoConfigSchema = z.strictObject({
  type: z.literal('flamingo').default('flamingo'),
  ...perceiverFields,
  /** LLM num_hidden_layers: one gated cross-attention block per chosen layer. */
  llmLayers,
  modality,
  /** A gated cross-attention block before LLM layers i with (i + 1) % n == 0 (OpenFlamingo 4). */
  crossAttnEveryNLayers: dim.default(4),
  xattnHeads: dim.default(8),
  xattnDimHead: dim.default(64),
  /** Text attends only to the item placed last before it (OpenFlamingo only_attend_immediate_media). */
  onlyAttendImmediateMedia: z.boolean().default(true),
});
export type FlamingoConfig = z.output<typeof FlamingoConfigSchema>;

export const MMAdapterConfigSchema = z.strictObject({
  type: z.literal('mm_adapter').default('mm_adapter'),
  inDim: dim,
  outDim: dim,
  /** LLM num_hidden_layers: an adapter pair (before attention, before the MLP) in every layer. */
  llmLayers,
  modality,
  /** Bottleneck width of the shared down-projection (LaVIN hidden_dim 8). */
  hiddenDim: dim.default(8),
  /** Softmax temperature of the modality router (LaVIN t = 10). */
  temperature: z.number().positive().default(10),
  /** Scale of the up-projections' output (LaVIN scale 1). */
  scale: z.number().default(1),
  /** The visual tokens: one Linear from the features into the LLM (`proj`). */
  bias: z.boolean().default(true),
  seed,
  std,
});
export type MMAdapterConfig = z.output<typeof MMAdapterConfigSchema>;

export const QwenResamplerConfigSchema = z.strictObject({
  type: z.literal('qwen_resampler').default('qwen_resampler'),
  /** Feature width (Qwen-VL: the ViT width, kv_dim). */
  inDim: dim,
  /** LLM hidden size (Qwen-VL: the resampler's embed_dim = output_dim). */
  outDim: dim,
  /** gridSize² learned queries = slots per item (Qwen-VL 16 → 256). */
  gridSize: dim.default(16),
  /** Attention heads (Qwen-VL: output_dim / 128). */
  heads: dim.default(8),
  layerNormEps: z.number().positive().default(1e-6),
  bias: z.boolean().default(true),
  seed,
  std,
});
export type QwenResamplerConfig = z.output<typeof QwenResamplerConfigSchema>;
