// preprocessor_config.json of CLIPImageProcessor / SiglipImageProcessor, with the defaults of the HF classes
// for fields a file omits (old CLIP files have no rescale fields and give size / crop_size as plain ints).
import { formatZodIssues } from '@vistune/core';
import { z } from 'zod';
import { PIL_RESAMPLE_IDS, type ResampleFilter } from './resample.js';

export type ImageProcessorKind = 'clip' | 'siglip';

export type ResizeTarget = { shortestEdge: number } | { height: number; width: number };

export interface ImageProcessorSettings {
  kind: ImageProcessorKind;
  /** null: no resize. */
  resize: ResizeTarget | null;
  resample: ResampleFilter;
  /** null: no center crop (always null for SigLIP, whose processor has none). */
  centerCrop: { height: number; width: number } | null;
  /** null: no rescale (pixels stay 0..255). */
  rescaleFactor: number | null;
  /** null: no normalisation. */
  normalize: { mean: [number, number, number]; std: [number, number, number] } | null;
  /** LLaVA-1.5 `image_aspect_ratio: pad`: pad to a square of the mean colour before resizing. */
  padToSquare: boolean;
  /** Mean colour used for padding, 0..255 (LLaVA: int(mean · 255)). */
  padColor: [number, number, number];
}

const positiveInt = z.number().int().positive();
const sizeSchema = z.union([
  positiveInt,
  z.object({ shortest_edge: positiveInt }),
  z.object({ height: positiveInt, width: positiveInt }),
]);
const channelValues = z.union([z.number(), z.array(z.number()).length(3)]);

/** The fields vistune reads; other keys (processor_class, …) are accepted and ignored. */
export const hfImageProcessorConfigSchema = z.object({
  image_processor_type: z.string().optional(),
  feature_extractor_type: z.string().optional(),
  do_resize: z.boolean().optional(),
  size: sizeSchema.optional(),
  resample: z.number().int().min(0).max(5).optional(),
  do_center_crop: z.boolean().optional(),
  crop_size: sizeSchema.optional(),
  do_rescale: z.boolean().optional(),
  rescale_factor: z.number().positive().optional(),
  do_normalize: z.boolean().optional(),
  image_mean: channelValues.optional(),
  image_std: channelValues.optional(),
  do_convert_rgb: z.boolean().nullable().optional(),
  /** LLaVA training/eval option (not a HF field): 'pad' pads to a square with the mean colour. */
  image_aspect_ratio: z.enum(['pad', 'square']).optional(),
});
export type HfImageProcessorConfig = z.infer<typeof hfImageProcessorConfigSchema>;

const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const IMAGENET_STANDARD: [number, number, number] = [0.5, 0.5, 0.5];

function triple(
  v: number | number[] | undefined,
  fallback: [number, number, number],
): [number, number, number] {
  if (v === undefined) return fallback;
  return typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]];
}

/** LLaVA's int(x · 255), kept inside 0..255. */
function toByte(x: number): number {
  return Math.min(255, Math.max(0, Math.trunc(x * 255)));
}

function kindOf(c: HfImageProcessorConfig, source: string): ImageProcessorKind {
  const type = c.image_processor_type ?? c.feature_extractor_type ?? '';
  if (/^CLIP(ImageProcessor|FeatureExtractor)/.test(type)) return 'clip';
  if (/^Siglip(ImageProcessor|FeatureExtractor)/.test(type)) return 'siglip';
  throw new Error(
    `${source}: image_processor_type "${type || '(missing)'}" is not a CLIP or SigLIP image processor; ` +
      "pass { kind: 'clip' | 'siglip' } to choose the processing explicitly",
  );
}

export interface ParseImageProcessorOptions {
  /** Overrides the kind read from image_processor_type. */
  kind?: ImageProcessorKind;
  /** Overrides `image_aspect_ratio` (LLaVA-1.5 fine-tuning and eval use pad). */
  padToSquare?: boolean;
  /** File named in errors. */
  source?: string;
}

/** preprocessor_config.json object → settings, with HF class defaults for missing fields. */
export function parseImageProcessorConfig(
  raw: unknown,
  opts: ParseImageProcessorOptions = {},
): ImageProcessorSettings {
  const source = opts.source ?? 'preprocessor_config.json';
  const parsed = hfImageProcessorConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `Invalid image processor config in ${source}:\n  ${formatZodIssues(parsed.error).join('\n  ')}`,
    );
  }
  const c = parsed.data;
  const kind = opts.kind ?? kindOf(c, source);
  const resampleId = c.resample ?? 3; // both classes default to PIL BICUBIC
  const resample = PIL_RESAMPLE_IDS[resampleId];
  if (!resample) {
    throw new Error(
      `${source}: resample ${resampleId} (nearest) is not supported; use 2 (bilinear) or 3 (bicubic)`,
    );
  }
  const isClip = kind === 'clip';
  const mean = triple(c.image_mean, isClip ? OPENAI_CLIP_MEAN : IMAGENET_STANDARD);
  const std = triple(c.image_std, isClip ? OPENAI_CLIP_STD : IMAGENET_STANDARD);
  if (std.some((s) => s === 0))
    throw new Error(`${source}: image_std has a zero entry; every std must be non-zero`);

  const size = c.size ?? (isClip ? { shortest_edge: 224 } : { height: 224, width: 224 });
  let resize: ResizeTarget | null = null;
  if (c.do_resize ?? true) {
    if (typeof size === 'number') {
      if (!isClip) throw new Error(`${source}: SigLIP needs size {"height": …, "width": …}, got ${size}`);
      resize = { shortestEdge: size }; // HF get_size_dict(int, default_to_square=False)
    } else if ('shortest_edge' in size) {
      if (!isClip)
        throw new Error(`${source}: SigLIP needs size {"height": …, "width": …}, got shortest_edge`);
      resize = { shortestEdge: size.shortest_edge };
    } else {
      resize = { height: size.height, width: size.width };
    }
  }
  let centerCrop: ImageProcessorSettings['centerCrop'] = null;
  if (isClip && (c.do_center_crop ?? true)) {
    const crop = c.crop_size ?? 224;
    if (typeof crop === 'number') centerCrop = { height: crop, width: crop };
    else if ('shortest_edge' in crop) {
      throw new Error(`${source}: crop_size must be an int or {"height": …, "width": …}, got shortest_edge`);
    } else centerCrop = { height: crop.height, width: crop.width };
  }
  return {
    kind,
    resize,
    resample,
    centerCrop,
    rescaleFactor: (c.do_rescale ?? true) ? (c.rescale_factor ?? 1 / 255) : null,
    normalize: (c.do_normalize ?? true) ? { mean, std } : null,
    padToSquare: opts.padToSquare ?? c.image_aspect_ratio === 'pad',
    // LLaVA: tuple(int(x * 255) for x in image_processor.image_mean), i.e. truncated, not rounded.
    padColor: [toByte(mean[0]), toByte(mean[1]), toByte(mean[2])],
  };
}

/** Settings → a preprocessor_config.json object as HF's CLIPImageProcessor / SiglipImageProcessor write it. */
export function imageProcessorSettingsToHf(s: ImageProcessorSettings): HfImageProcessorConfig & {
  processor_class?: string;
} {
  const resampleId = Object.entries(PIL_RESAMPLE_IDS).find(([, f]) => f === s.resample)?.[0];
  const size = s.resize && ('shortestEdge' in s.resize ? { shortest_edge: s.resize.shortestEdge } : s.resize);
  return {
    image_processor_type: s.kind === 'clip' ? 'CLIPImageProcessor' : 'SiglipImageProcessor',
    do_resize: s.resize !== null,
    ...(size ? { size } : {}),
    resample: Number(resampleId ?? 3),
    ...(s.kind === 'clip'
      ? { do_center_crop: s.centerCrop !== null, ...(s.centerCrop ? { crop_size: s.centerCrop } : {}) }
      : {}),
    do_rescale: s.rescaleFactor !== null,
    ...(s.rescaleFactor !== null ? { rescale_factor: s.rescaleFactor } : {}),
    do_normalize: s.normalize !== null,
    ...(s.normalize ? { image_mean: s.normalize.mean, image_std: s.normalize.std } : {}),
    do_convert_rgb: true,
    ...(s.padToSquare ? { image_aspect_ratio: 'pad' as const } : {}),
  };
}
