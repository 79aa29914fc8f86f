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
