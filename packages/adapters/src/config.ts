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

/** LLM num_key_value_heads (k_proj / v_proj width = this × head dim); default: as many as the query heads. */
const llmKeyValueHeads = dim.optional();

export const LlamaAdapterConfigSchema = z.strictObject({
  type: z.literal('llama_adapter').default('llama_adapter'),
  /** Feature width (LLaMA-Adapter V2: the CLIP width, clip_dim). */
  inDim: dim,
  /** LLM hidden size. */
  outDim: dim,
  /** LLM num_hidden_layers: bias/scale tuning covers every layer, prompts the chosen ones. */
  llmLayers,
  /** LLM num_attention_heads: one gate per head. */
  llmHeads: dim,
  llmKeyValueHeads,
  /** LLM intermediate_size (gate_proj / up_proj width), needed for biasTuning. */
  llmIntermediateSize: dim.optional(),
  modality,
  /** Adaption prompt tokens per prompted layer = visual query slots per item (V2 query_len 10). */
  promptLength: dim.default(10),
  /** Top LLM layers with static adaption prompts (default: every layer above the visual ones). */
  adapterLayers: z.number().int().min(0).optional(),
  /** Bottom LLM layers whose prompts also carry the image's visual query (early fusion; default 1). */
  visualLayers: z.number().int().min(0).default(1),
  /** Width of the visual blocks (V2 v_embed_dim 768); default inDim. */
  visualDim: dim.optional(),
  /** Pre-norm transformer blocks over [visual query; projected features] (V2 v_depth 8). */
  visualDepth: z.number().int().min(0).default(2),
  visualHeads: dim.default(4),
  visualMlpRatio: dim.default(4),
  /** V2's bias and scale on every Linear of every LLM layer (zero bias, unit scale: the LLM at init). */
  biasTuning: z.boolean().default(true),
  /** The item's slots only carry the visual query to the prompts: text never attends to them. */
  hideSlots: z.boolean().default(true),
  seed,
  std,
});
export type LlamaAdapterConfig = z.output<typeof LlamaAdapterConfigSchema>;

export const VisualExpertConfigSchema = z.strictObject({
  type: z.literal('visual_expert').default('visual_expert'),
  inDim: dim,
  outDim: dim,
  /** LLM num_hidden_layers: a visual expert (q/k/v/o and the feed-forward's Linears) in every layer. */
  llmLayers,
  /** LLM num_attention_heads (with llmKeyValueHeads: the k_proj / v_proj width); default 1 = no GQA. */
  llmHeads: dim.default(1),
  llmKeyValueHeads,
  /** LLM intermediate_size: the feed-forward expert's width. */
  llmIntermediateSize: dim,
  modality,
  /** Hidden width of the SwiGLU projector (CogVLM: the LLM's intermediate_size); default 2 × outDim. */
  intermediateSize: dim.optional(),
  seed,
  std,
});
export type VisualExpertConfig = z.output<typeof VisualExpertConfigSchema>;

export const CAbstractorConfigSchema = z.strictObject({
  type: z.literal('c_abstractor').default('c_abstractor'),
  inDim: dim,
  outDim: dim,
  /** Slots per item, a square (Honeybee num_queries 144 = 12²); the grid is adaptively average-pooled to it. */
  numQueries: dim.default(144),
  /** Width of the ResNet stages (Honeybee hidden_size 1024); default outDim. */
  hiddenSize: dim.optional(),
  /** RegNet bottleneck blocks per stage, before and after the pooling (Honeybee 3). */
  depth: dim.default(3),
  /** Linears of the readout MLP, SiLU between (Honeybee mlp_depth 2). */
  mlpDepth: dim.default(2),
  /** Squeeze-excitation width as a fraction of the block's input width (timm RegNet 0.25). */
  seRatio: z.number().positive().max(1).default(0.25),
  seed,
  std,
});
export type CAbstractorConfig = z.output<typeof CAbstractorConfigSchema>;

export const LdpConfigSchema = z.strictObject({
  type: z.literal('ldp').default('ldp'),
  inDim: dim,
  outDim: dim,
  /** Slots per item, a square (MobileVLM V2 TokenDownLayer 12×12 = 144); adaptive average pooling. */
  numQueries: dim.default(144),
  seed,
  std,
});
export type LdpConfig = z.output<typeof LdpConfigSchema>;

export const FuyuProjectorConfigSchema = z.strictObject({
  type: z.literal('fuyu').default('fuyu'),
  /** Raw patch width: patch_size² × channels (the `image_patches` encoder's hidden size). */
  inDim: dim,
  outDim: dim,
  /** A learned row separator after each patch row (Fuyu's |NEWLINE| token): any aspect ratio reads as 2-D. */
  newline: z.boolean().default(true),
  bias: z.boolean().default(true),
  seed,
  std,
});
export type FuyuProjectorConfig = z.output<typeof FuyuProjectorConfigSchema>;
