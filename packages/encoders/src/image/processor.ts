// CLIPImageProcessor / SiglipImageProcessor (the PIL-based "slow" classes, which LLaVA uses), bit for bit:
// decode → RGB → [LLaVA pad to square] → resize (PIL) → [center crop] → rescale → normalise in float32 → [3, H, W].
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComponentConfig, MediaProcessor, ProcessedMedia } from '@vistune/core';
import { tf } from '@vistune/core';
import {
  imageProcessorSettingsToHf,
  type ImageProcessorKind,
  type ImageProcessorSettings,
  type ParseImageProcessorOptions,
  parseImageProcessorConfig,
  type ResizeTarget,
} from './config.js';
import { resizeRgb } from './resample.js';
import {
  centerCrop,
  checkImageSize,
  expandToSquare,
  type ImageInput,
  type RgbImage,
  readImageSize,
  toRgbImage,
} from './rgb.js';
import { ImageTransform } from './transform.js';

export interface ProcessedImage {
  /** [3, height, width] channel-first float32, ready for the vision encoder. */
  pixelValues: Float32Array;
  width: number;
  height: number;
  /** Maps coordinates between the original image and pixelValues. */
  transform: ImageTransform;
}

/** HF get_resize_output_image_size: shortest edge → (size, int(size · long / short)); else the fixed size. */
export function resizeOutputSize(
  width: number,
  height: number,
  target: ResizeTarget,
): { width: number; height: number } {
  if (!('shortestEdge' in target)) return { width: target.width, height: target.height };
  const s = target.shortestEdge;
  if (width <= height) return { width: s, height: Math.trunc((s * height) / width) };
  return { width: Math.trunc((s * width) / height), height: s };
}

export class ImageProcessor implements MediaProcessor {
  readonly media = 'image';

  constructor(readonly settings: ImageProcessorSettings) {}

  /** MediaProcessor: a file or bytes → pixel values [3, H, W] with the pixel transform for box codecs. */
  async process(source: string | Uint8Array): Promise<ProcessedMedia> {
    const p = await this.preprocess(source);
    return {
      tensor: tf.tensor3d(p.pixelValues, [3, p.height, p.width]),
      transform: p.transform,
      original: { width: p.transform.steps.originalWidth, height: p.transform.steps.originalHeight },
    };
  }

  /** preprocessor_config.json as HF writes it. */
  toHfConfig(): Record<string, unknown> {
    return imageProcessorSettingsToHf(this.settings);
  }

  /** The registry config (`processor` kind) that recreates this processor. */
  processorConfig(): ComponentConfig {
    const { image_processor_type: _type, ...fields } = imageProcessorSettingsToHf(this.settings);
    return { type: this.kind, ...fields };
  }

  /** Writes preprocessor_config.json into a model folder. */
  async save(dir: string): Promise<void> {
    await writeFile(join(dir, 'preprocessor_config.json'), `${JSON.stringify(this.toHfConfig(), null, 2)}\n`);
  }

  /** From a preprocessor_config.json object (CLIPImageProcessor or SiglipImageProcessor). */
  static fromConfig(raw: unknown, opts: ParseImageProcessorOptions = {}): ImageProcessor {
    return new ImageProcessor(parseImageProcessorConfig(raw, opts));
  }

  get kind(): ImageProcessorKind {
    return this.settings.kind;
  }

  /** Final [height, width] for an original of this size (fixed whenever there is a crop or a fixed resize). */
  outputSize(width: number, height: number): { width: number; height: number } {
    const s = this.settings;
    if (s.centerCrop) return { ...s.centerCrop };
    const side = s.padToSquare ? Math.max(width, height) : 0;
    return s.resize
      ? resizeOutputSize(side || width, side || height, s.resize)
      : { width: side || width, height: side || height };
  }

  /** Decodes (when given a path or bytes) and preprocesses one image. */
  async preprocess(input: ImageInput): Promise<ProcessedImage> {
    const source = typeof input === 'string' ? `Image ${input}` : 'The image';
    // From the header, before decoding: a tiny file may decode to a strip that would resize to gigabytes.
    const size =
      input instanceof Uint8Array || typeof input === 'string' ? await readImageSize(input) : input;
    this.checkSizes(size.width, size.height, source);
    return this.preprocessRgb(await toRgbImage(input));
  }

  /** Throws before any pixel is allocated when padding or resizing a width×height image would be too large. */
  checkSizes(width: number, height: number, source = 'The image'): void {
    const s = this.settings;
    const side = s.padToSquare ? Math.max(width, height) : 0;
    const [w, h] = side ? [side, side] : [width, height];
    if (side) checkImageSize(w, h, 'padded to square', source);
    if (!s.resize) return;
    const size = resizeOutputSize(w, h, s.resize);
    checkImageSize(size.width, size.height, 'resized', source);
    checkImageSize(size.width, h, 'resized (horizontal pass)', source);
  }

  /** Preprocesses several images and stacks them: pixel_values [N, 3, H, W] (all must share the output size). */
  async preprocessBatch(
    inputs: readonly ImageInput[],
  ): Promise<{ pixelValues: tf.Tensor4D; images: ProcessedImage[] }> {
    const images: ProcessedImage[] = [];
    for (const input of inputs) images.push(await this.preprocess(input));
    return { pixelValues: stackPixelValues(images), images };
  }

  /** The pixel pipeline on a decoded RGB image. */
  preprocessRgb(original: RgbImage): ProcessedImage {
    const s = this.settings;
    this.checkSizes(original.width, original.height);
    let image = original;
    let padLeft = 0;
    let padTop = 0;
    if (s.padToSquare) ({ image, left: padLeft, top: padTop } = expandToSquare(image, s.padColor));
    const padded = image;
    if (s.resize) {
      const size = resizeOutputSize(image.width, image.height, s.resize);
      if (size.width !== image.width || size.height !== image.height)
        image = resizeRgb(image, size.width, size.height, s.resample);
    }
    const resized = image;
    let cropLeft = 0;
    let cropTop = 0;
    if (s.centerCrop)
      ({ image, left: cropLeft, top: cropTop } = centerCrop(image, s.centerCrop.width, s.centerCrop.height));
    const transform = new ImageTransform({
      originalWidth: original.width,
      originalHeight: original.height,
      padLeft,
      padTop,
      paddedWidth: padded.width,
      paddedHeight: padded.height,
      resizedWidth: resized.width,
      resizedHeight: resized.height,
      cropLeft,
      cropTop,
      width: image.width,
      height: image.height,
    });
    return {
      pixelValues: this.toChannelFirstFloat(image),
      width: image.width,
      height: image.height,
      transform,
    };
  }

  /**
   * HF rescale (float64 product, then float32) and normalize ((x - mean) / std with float32 mean, std and
   * arithmetic), laid out [3, H, W]. Each step is rounded to float32 as numpy does, so results are bit-exact.
   */
  private toChannelFirstFloat(image: RgbImage): Float32Array {
    const { width, height, data } = image;
    const plane = width * height;
    const out = new Float32Array(3 * plane);
    const factor = this.settings.rescaleFactor;
    const norm = this.settings.normalize;
    for (let c = 0; c < 3; c++) {
      const mean = norm ? Math.fround(norm.mean[c]) : 0;
      const std = norm ? Math.fround(norm.std[c]) : 1;
      for (let i = 0; i < plane; i++) {
        const u8 = data[i * 3 + c];
        let v = factor === null ? u8 : Math.fround(u8 * factor);
        if (norm) v = Math.fround(Math.fround(v - mean) / std);
        out[c * plane + i] = v;
      }
    }
    return out;
  }
}

/** Stacks processed images into pixel_values [N, 3, H, W]. */
export function stackPixelValues(images: readonly ProcessedImage[]): tf.Tensor4D {
  if (images.length === 0) throw new Error('stackPixelValues: no images given');
  const { width, height } = images[0];
  const plane = 3 * width * height;
  const all = new Float32Array(images.length * plane);
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height) {
      throw new Error(
        `stackPixelValues: image ${i} is ${img.width}x${img.height} but image 0 is ${width}x${height}; ` +
          'use a processor with a center crop or a fixed {height, width} resize',
      );
    }
    all.set(img.pixelValues, i * plane);
  });
  return tf.tensor4d(all, [images.length, 3, height, width]);
}
