// Configuration of the small convolutional tower (`cnn_vision`), in Hugging Face style snake_case fields, as its
// config.json holds them. Tiny images (digits, glyphs, icons) need locality a ViT must learn from data; a few
// strided 3×3 convolutions give it for free and train in seconds on a CPU.
import { formatZodIssues } from '@vistune/core';
import { z } from 'zod';

/** model_type of a saved CNN tower (config.json). */
export const CNN_VISION_MODEL_TYPE = 'vistune_cnn_vision';

const positiveInt = z.number().int().positive();

/** The architecture fields (config.json of a saved tower, and the `cnn_vision` encoder entry). */
export const cnnVisionArchitectureShape = {
  num_channels: positiveInt.default(3),
  /** Channels of each stage; every stage is a 3×3 convolution with stride 2 and GELU, so it halves H and W. */
  hidden_sizes: z.array(positiveInt).min(1).default([32, 64]),
  /** Side of the image cell one output token covers (a multiple of 2^stages); image sides must be multiples of it. */
  patch_size: positiveInt.default(8),
  /** Width of each output token. */
  hidden_size: positiveInt.default(64),
  layer_norm_eps: z.number().positive().default(1e-5),
  initializer_range: z.number().positive().default(0.02),
};

export const cnnVisionConfigSchema = z.object({
  model_type: z.literal(CNN_VISION_MODEL_TYPE).default(CNN_VISION_MODEL_TYPE),
  ...cnnVisionArchitectureShape,
});
export type CnnVisionConfig = z.output<typeof cnnVisionConfigSchema>;

/** Parses and checks a config (config.json or entry fields); errors name `source`, the field and the fix. */
export function parseCnnVisionConfig(raw: unknown, source = 'cnn_vision config'): CnnVisionConfig {
  const parsed = cnnVisionConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `Invalid CNN vision config in ${source}:\n  ${formatZodIssues(parsed.error).join('\n  ')}`,
    );
  const c = parsed.data;
  const stride = 2 ** c.hidden_sizes.length;
  if (c.patch_size % stride !== 0)
    throw new Error(
      `${source}: patch_size ${c.patch_size} is not a multiple of 2^${c.hidden_sizes.length} = ${stride} (one halving per entry of hidden_sizes): use patch_size ${stride * Math.max(1, Math.round(c.patch_size / stride))} or fewer stages`,
    );
  return c;
}
