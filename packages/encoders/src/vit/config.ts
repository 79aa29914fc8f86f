// Vision Transformer configuration, read from a Hugging Face `vision_config` (CLIPVisionConfig / SiglipVisionConfig).
// HF config.json files omit fields left at their class defaults (llava-1.5 has no hidden_act), so defaults
// depend on model_type exactly as in the HF classes.
import { formatZodIssues } from '@vistune/core';
import { z } from 'zod';

export type VisionModelType = 'clip_vision_model' | 'siglip_vision_model';

export interface VisionTransformerConfig {
  modelType: VisionModelType;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
  hiddenAct: string;
  /** Std of the normal random init (HF initializer_range). */
  initializerRange: number;
  /** SigLIP only: whether the attention-pooling head (`head.*`) exists. */
  useHead: boolean;
}

const positiveInt = z.number().int().positive();

/** The HF `vision_config` fields vistune reads; other HF keys (projection_dim, dropout, …) are accepted and ignored. */
export const hfVisionConfigSchema = z.object({
  model_type: z.enum(['clip_vision_model', 'siglip_vision_model']),
  hidden_size: positiveInt.optional(),
  intermediate_size: positiveInt.optional(),
  num_hidden_layers: positiveInt.optional(),
  num_attention_heads: positiveInt.optional(),
  num_channels: positiveInt.optional(),
  image_size: positiveInt.optional(),
  patch_size: positiveInt.optional(),
  layer_norm_eps: z.number().positive().optional(),
  hidden_act: z
    .enum(['quick_gelu', 'gelu', 'gelu_pytorch_tanh', 'gelu_new', 'gelu_fast', 'silu', 'relu'])
    .optional(),
  initializer_range: z.number().positive().optional(),
  vision_use_head: z.boolean().optional(),
});
export type HfVisionConfig = z.infer<typeof hfVisionConfigSchema>;

// Class defaults of transformers' CLIPVisionConfig and SiglipVisionConfig.
const DEFAULTS: Record<VisionModelType, Omit<VisionTransformerConfig, 'modelType'>> = {
  clip_vision_model: {
    hiddenSize: 768,
    intermediateSize: 3072,
    numHiddenLayers: 12,
    numAttentionHeads: 12,
    numChannels: 3,
    imageSize: 224,
    patchSize: 32,
    layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu',
    initializerRange: 0.02,
    useHead: false,
  },
  siglip_vision_model: {
    hiddenSize: 768,
    intermediateSize: 3072,
    numHiddenLayers: 12,
    numAttentionHeads: 12,
    numChannels: 3,
    imageSize: 224,
    patchSize: 16,
    layerNormEps: 1e-6,
    hiddenAct: 'gelu_pytorch_tanh',
    initializerRange: 0.02,
    useHead: true,
  },
};

/**
 * Parses a HF vision config object (the `vision_config` of a LLaVA / CLIP / SigLIP config.json, or the
 * top-level config of a CLIPVisionModel / SiglipVisionModel). `source` names the file for error messages.
 */
export function parseVisionConfig(raw: unknown, source = 'vision_config'): VisionTransformerConfig {
  const parsed = hfVisionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`Invalid vision config in ${source}:\n  ${formatZodIssues(parsed.error).join('\n  ')}`);
  }
  const c = parsed.data;
  const d = DEFAULTS[c.model_type];
  const config: VisionTransformerConfig = {
    modelType: c.model_type,
    hiddenSize: c.hidden_size ?? d.hiddenSize,
    intermediateSize: c.intermediate_size ?? d.intermediateSize,
    numHiddenLayers: c.num_hidden_layers ?? d.numHiddenLayers,
    numAttentionHeads: c.num_attention_heads ?? d.numAttentionHeads,
    numChannels: c.num_channels ?? d.numChannels,
    imageSize: c.image_size ?? d.imageSize,
    patchSize: c.patch_size ?? d.patchSize,
    layerNormEps: c.layer_norm_eps ?? d.layerNormEps,
    hiddenAct: c.hidden_act ?? d.hiddenAct,
    initializerRange: c.initializer_range ?? d.initializerRange,
    useHead: c.model_type === 'siglip_vision_model' ? (c.vision_use_head ?? true) : false,
  };
  validateVisionConfig(config, source);
  return config;
}

/** Checks the divisibility constraints HF relies on; throws naming the field and the fix. */
export function validateVisionConfig(config: VisionTransformerConfig, source = 'vision config'): void {
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw new Error(
      `${source}: hidden_size ${config.hiddenSize} is not divisible by num_attention_heads ${config.numAttentionHeads}; ` +
        'choose a head count that divides hidden_size',
    );
  }
  if (config.imageSize % config.patchSize !== 0) {
    throw new Error(
      `${source}: image_size ${config.imageSize} is not a multiple of patch_size ${config.patchSize}; ` +
        'use an image_size that patch_size divides',
    );
  }
}

/** Patches per side and in all (without the class token). */
export function patchGrid(config: VisionTransformerConfig): { perSide: number; count: number } {
  const perSide = config.imageSize / config.patchSize;
  return { perSide, count: perSide * perSide };
}

/** Config → the HF vision_config fields (what LLaVA's config.json and the encoder entries hold). */
export function visionConfigToHf(c: VisionTransformerConfig): Record<string, unknown> {
  return {
    model_type: c.modelType,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_channels: c.numChannels,
    image_size: c.imageSize,
    patch_size: c.patchSize,
    layer_norm_eps: c.layerNormEps,
    hidden_act: c.hiddenAct,
    initializer_range: c.initializerRange,
    ...(c.modelType === 'siglip_vision_model' ? { vision_use_head: c.useHead } : {}),
  };
}
