// Registry entries of this package: encoders clip_vision / siglip_vision / cnn_vision, processors clip / siglip.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type MediaKind, type Registry, readJsonFile } from '@vistune/core';
import { z } from 'zod';
import { CNN_VISION_MODEL_TYPE, cnnVisionArchitectureShape, parseCnnVisionConfig } from './cnn/config.js';
import { CnnVisionEncoder } from './cnn/model.js';
import { hfImageProcessorConfigSchema, type ImageProcessorKind } from './image/config.js';
import { ImageProcessor } from './image/processor.js';
import { ImagePatchesEncoder, imagePatchesConfigSchema } from './patches/encoder.js';
import { hfVisionConfigSchema, type VisionModelType } from './vit/config.js';
import { VisionTransformer } from './vit/model.js';
import { loadPretrainedVisionTransformer } from './vit/pretrained.js';

const architectureFields = hfVisionConfigSchema.omit({ model_type: true, vision_use_head: true }).shape;

/** Either a HF folder to load (`pretrained`) or the architecture in HF field names for a seeded random init. */
export const visionEncoderEntrySchema = z
  .strictObject({
    /** HF model folder (vision model, CLIP/SigLIP model or LLaVA checkpoint): config and weights come from it. */
    pretrained: z.string().optional(),
    ...architectureFields,
    /** Seed of the random init (ignored with pretrained). */
    seed: z.number().int().default(0),
    /** SigLIP only: build the attention-pooling head (default: as the config says). */
    with_head: z.boolean().optional(),
  })
  .refine(
    (c) =>
      !c.pretrained || Object.keys(architectureFields).every((k) => c[k as keyof typeof c] === undefined),
    {
      message:
        'set either pretrained or architecture fields (hidden_size, …): with pretrained they come from its config.json',
    },
  );
export type VisionEncoderEntryConfig = z.output<typeof visionEncoderEntrySchema>;

async function createVisionEncoder(
  modelType: VisionModelType,
  c: VisionEncoderEntryConfig,
): Promise<VisionTransformer> {
  if (c.with_head && modelType !== 'siglip_vision_model')
    throw new Error('with_head applies to siglip_vision only');
  if (c.pretrained) {
    const { model } = await loadPretrainedVisionTransformer(c.pretrained, { withHead: c.with_head });
    if (model.config.modelType !== modelType) {
      model.dispose();
      throw new Error(
        `${c.pretrained} holds a ${model.config.modelType}, not a ${modelType}: pick the matching encoder type`,
      );
    }
    return model;
  }
  const { pretrained: _p, seed, with_head, ...fields } = c;
  return VisionTransformer.fromHFConfig(
    { ...fields, model_type: modelType, vision_use_head: with_head },
    { seed },
  );
}

const cnnArchitectureFields = Object.fromEntries(
  Object.entries(cnnVisionArchitectureShape).map(([k, v]) => [k, v.unwrap().optional()]),
) as {
  [K in keyof typeof cnnVisionArchitectureShape]: z.ZodOptional<
    ReturnType<(typeof cnnVisionArchitectureShape)[K]['unwrap']>
  >;
};

/** A saved CNN tower (`pretrained`, written by vistune pretrain) or its architecture for a seeded random init. */
export const cnnEncoderEntrySchema = z
  .strictObject({
    pretrained: z.string().optional(),
    ...cnnArchitectureFields,
    seed: z.number().int().default(0),
  })
  .refine(
    (c) =>
      !c.pretrained || Object.keys(cnnArchitectureFields).every((k) => c[k as keyof typeof c] === undefined),
    {
      message:
        'set either pretrained or architecture fields (hidden_sizes, …): with pretrained they come from its config.json',
    },
  );
export type CnnEncoderEntryConfig = z.output<typeof cnnEncoderEntrySchema>;

async function createCnnEncoder(c: CnnEncoderEntryConfig): Promise<CnnVisionEncoder> {
  if (c.pretrained) return CnnVisionEncoder.fromPretrained(c.pretrained);
  const { pretrained: _p, seed, ...fields } = c;
  const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  return new CnnVisionEncoder(parseCnnVisionConfig(defined, 'encoder cnn_vision'), { seed });
}

/** preprocessor_config.json fields (HF names), optionally on top of a `pretrained` folder or file. */
export const imageProcessorEntrySchema = hfImageProcessorConfigSchema.extend({
  /** A preprocessor_config.json, or the folder holding it; the other fields override its values. */
  pretrained: z.string().optional(),
});
export type ImageProcessorEntryConfig = z.output<typeof imageProcessorEntrySchema>;

async function createImageProcessor(
  kind: ImageProcessorKind,
  c: ImageProcessorEntryConfig,
): Promise<ImageProcessor> {
  const { pretrained, ...fields } = c;
  let base: Record<string, unknown> = {};
  let source = `${kind} processor config`;
  if (pretrained) {
    const isFolder = (await stat(pretrained).catch(() => null))?.isDirectory() ?? false;
    source = isFolder ? join(pretrained, 'preprocessor_config.json') : pretrained;
    base = (await readJsonFile(source, 'image processor config', {
      hint: 'expected preprocessor_config.json or the model folder holding it',
    })) as Record<string, unknown>;
  }
  const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  return ImageProcessor.fromConfig({ ...base, ...defined }, { kind, source });
}

/** HF vision_config → encoder entry config: the architecture fields (a VLM's tower never uses SigLIP's head). */
function visionFromHf(hf: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fields = Object.fromEntries(
    Object.entries(hf).filter(([k]) => k in architectureFields && k !== 'model_type'),
  );
  return hf.model_type === 'siglip_vision_model' ? { ...fields, with_head: false } : fields;
}

/** Raster formats sharp decodes. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.avif', '.tif', '.tiff'] as const;

/** Adds this package's components to a registry. */
export function register(registry: Registry): void {
  registry.add({
    kind: 'media',
    name: 'image',
    about: `Still images (${IMAGE_EXTENSIONS.join(' ')}), marker <image>; processors clip / siglip`,
    schema: z.object({}),
    create: (): MediaKind => ({ name: 'image', marker: '<image>', extensions: IMAGE_EXTENSIONS }),
  });
  registry.add({
    kind: 'encoder',
    name: 'clip_vision',
    about: 'CLIP ViT vision tower (HF CLIPVisionModel names/weights; CLS token, pre-LN, quick_gelu)',
    hf: { types: ['clip_vision_model'], fromHf: visionFromHf },
    schema: visionEncoderEntrySchema,
    create: (c) => createVisionEncoder('clip_vision_model', c),
  });
  registry.add({
    kind: 'encoder',
    name: 'siglip_vision',
    about:
      'SigLIP ViT vision tower (HF SiglipVisionModel names/weights; no CLS, tanh-GELU, optional pooling head)',
    hf: { types: ['siglip_vision_model'], fromHf: visionFromHf },
    schema: visionEncoderEntrySchema,
    create: (c) => createVisionEncoder('siglip_vision_model', c),
  });
  registry.add({
    kind: 'encoder',
    name: 'image_patches',
    about:
      'No encoder (Fuyu / OtterHD): raw patch_size² × C patches of an image of any size, row-major, nothing learnt',
    schema: imagePatchesConfigSchema,
    create: (c) => new ImagePatchesEncoder(c),
  });
  registry.add({
    kind: 'encoder',
    name: 'cnn_vision',
    about: 'Small CNN tower for tiny images: strided 3×3 convs, one token per patch_size cell of any H×W',
    hf: { types: [CNN_VISION_MODEL_TYPE] },
    schema: cnnEncoderEntrySchema,
    create: (c) => createCnnEncoder(c),
  });
  registry.add({
    kind: 'processor',
    name: 'clip',
    about:
      'CLIPImageProcessor, PIL-exact: shortest-edge bicubic resize, center crop, rescale, normalise (+ LLaVA pad)',
    hf: { types: ['CLIPImageProcessor', 'CLIPFeatureExtractor'] },
    schema: imageProcessorEntrySchema,
    create: (c) => createImageProcessor('clip', c),
  });
  registry.add({
    kind: 'processor',
    name: 'siglip',
    about: 'SiglipImageProcessor, PIL-exact: fixed height×width resize, rescale, normalise with mean/std 0.5',
    hf: { types: ['SiglipImageProcessor', 'SiglipImageProcessorFast'] },
    schema: imageProcessorEntrySchema,
    create: (c) => createImageProcessor('siglip', c),
  });
}
