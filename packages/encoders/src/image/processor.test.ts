import { readFileSync } from 'node:fs';
import { initBackend, loadSafetensors, tf } from '@vistune/core';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseImageProcessorConfig } from './config.js';
import { ImageProcessor, stackPixelValues } from './processor.js';
import { resizeRgb } from './resample.js';
import type { RgbImage } from './rgb.js';

const fixtureDir = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const clipConfig = JSON.parse(readFileSync(`${fixtureDir}preprocessor_config.json`, 'utf8'));
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

beforeAll(async () => {
  await initBackend();
});

/** width×height image whose pixel (x, y) is color(x, y). */
function synthetic(
  width: number,
  height: number,
  color: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(color(x, y), (y * width + x) * 3);
  return { width, height, data };
}

async function encode(image: RgbImage, format: 'png' | 'jpeg'): Promise<Uint8Array> {
  const s = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg({ quality: 95 }).toBuffer();
}

function expectPoint(got: [number, number], want: [number, number]): void {
  expect(Math.abs(got[0] - want[0])).toBeLessThan(1e-9);
  expect(Math.abs(got[1] - want[1])).toBeLessThan(1e-9);
}

/** (u8/255 - mean)/std computed in float64 from the definition. */
function normalised(u8: number, c: number): number {
  return (u8 / 255 - CLIP_MEAN[c]) / CLIP_STD[c];
}

describe('ImageProcessor (CLIPImageProcessor) on the fixture', () => {
  it('reproduces pixel_values.safetensors from the PNGs within 1e-6', async () => {
    const expected = await loadSafetensors(`${fixtureDir}pixel_values.safetensors`);
    const processor = ImageProcessor.fromConfig(clipConfig);
    let worst = 0;
    for (const [name, want] of expected) {
      const got = await processor.preprocess(`${fixtureDir}${name}`);
      expect([3, got.height, got.width]).toEqual(want.shape);
      const w = want.dataSync();
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(got.pixelValues[i] - w[i]));
    }
    console.log(`pixel_values max |diff| over ${expected.size} fixture PNGs = ${worst}`);
    expect(worst).toBeLessThanOrEqual(1e-6);
    tf.dispose([...expected.values()]);
  });

  it('pads a non-square image to a square of int(mean·255) before resizing (LLaVA pad)', async () => {
    const content: [number, number, number] = [200, 10, 30];
    const png = await encode(
      synthetic(24, 12, () => content),
      'png',
    );
    const processor = ImageProcessor.fromConfig(clipConfig, { padToSquare: true });
    const out = await processor.preprocess(png);
    expect([out.width, out.height]).toEqual([32, 32]);
    // 24×12 → 24×24 with the image at rows 6..17, then ×4/3 → 32×32: content rows 8..23.
    expectPoint(out.transform.toProcessed(0, 0), [0, 8]);
    expectPoint(out.transform.toProcessed(24, 12), [32, 24]);
    expectPoint(out.transform.toOriginal(16, 16), [12, 6]);
    const padColor = [122, 116, 104]; // int(0.48145466·255), int(0.4578275·255), int(0.40821073·255)
    const at = (c: number, x: number, y: number) => out.pixelValues[c * 32 * 32 + y * 32 + x];
    for (let c = 0; c < 3; c++) {
      for (const y of [0, 3, 28, 31])
        expect(Math.abs(at(c, 5, y) - normalised(padColor[c], c))).toBeLessThan(1e-6);
      for (const y of [12, 16, 20])
        expect(Math.abs(at(c, 5, y) - normalised(content[c], c))).toBeLessThan(1e-6);
    }
  });

  it('resizes the shortest edge and center-crops a non-square JPEG, with a transform that maps both ways', async () => {
    const jpeg = await encode(
      synthetic(48, 24, (x, y) => [x * 5, y * 10, 128]),
      'jpeg',
    );
    const processor = ImageProcessor.fromConfig(clipConfig);
    const out = await processor.preprocess(jpeg);
    expect(out.pixelValues.length).toBe(3 * 32 * 32);
    // 48×24 → 64×32 (shortest edge 32), then the central 32×32 starting at x = 16.
    expect(out.transform.steps).toMatchObject({
      resizedWidth: 64,
      resizedHeight: 32,
      cropLeft: 16,
      cropTop: 0,
    });
    expectPoint(out.transform.toProcessed(24, 12), [16, 16]);
    expectPoint(out.transform.toOriginal(0, 0), [12, 0]);
    expectPoint(out.transform.toOriginal(...out.transform.toProcessed(30.5, 7.25)), [30.5, 7.25]);
    const batch = stackPixelValues([out, out]);
    expect(batch.shape).toEqual([2, 3, 32, 32]);
    batch.dispose();
  });

  it('drops alpha and replicates grey like PIL convert("RGB")', async () => {
    const rgba = await sharp({
      create: { width: 4, height: 4, channels: 4, background: { r: 40, g: 80, b: 120, alpha: 0.25 } },
    })
      .png()
      .toBuffer();
    const processor = ImageProcessor.fromConfig({
      ...clipConfig,
      size: { shortest_edge: 4 },
      crop_size: { height: 4, width: 4 },
    });
    const out = await processor.preprocess(rgba);
    expect(Math.abs(out.pixelValues[0] - normalised(40, 0))).toBeLessThan(1e-6);
    expect(Math.abs(out.pixelValues[16] - normalised(80, 1))).toBeLessThan(1e-6);
    expect(Math.abs(out.pixelValues[32] - normalised(120, 2))).toBeLessThan(1e-6);
  });
});

describe('resizeRgb (PIL resampling)', () => {
  const ramp = synthetic(40, 6, (x) => [4 * x + 10, 200 - 3 * x, 77]);

  it('matches a hand-computed Pillow value: antialiased bilinear 4 → 2 weights (3/7, 3/7, 1/7)', () => {
    const row = synthetic(4, 1, (x) => [70 * x, 0, 0]);
    expect(resizeRgb(row, 2, 1, 'bilinear').data[0]).toBe(50); // a plain 2-tap average would give 35
  });

  it('matches hand-computed Pillow bicubic 2 → 4: taps cut at the border and renormalised (a = -0.5)', () => {
    // Output 0: centre 0.25, taps x=0,1 with w(0.25) = 0.8671875, w(1.25) = -0.0703125, divided by their sum.
    const row = synthetic(2, 1, (x) => [100 + 100 * x, 0, 0]);
    const out = resizeRgb(row, 4, 1, 'bicubic');
    expect([0, 1, 2, 3].map((i) => out.data[i * 3])).toEqual([91, 121, 179, 209]);
  });

  it('reproduces linear ramps in the interior when down- and up-scaling (bilinear, bicubic)', () => {
    for (const filter of ['bilinear', 'bicubic'] as const) {
      for (const outWidth of [20, 60]) {
        const out = resizeRgb(ramp, outWidth, 6, filter);
        const scale = 40 / outWidth;
        const margin = Math.ceil(3 * Math.max(1, 1 / scale));
        for (let x = margin; x < outWidth - margin; x++) {
          const source = (x + 0.5) * scale - 0.5; // output pixel centre in input pixel-index units
          expect(Math.abs(out.data[(2 * outWidth + x) * 3] - (4 * source + 10))).toBeLessThanOrEqual(
            0.5 + 1e-3,
          );
          expect(Math.abs(out.data[(2 * outWidth + x) * 3 + 1] - (200 - 3 * source))).toBeLessThanOrEqual(
            0.5 + 1e-3,
          );
        }
      }
    }
  });

  it('keeps a constant image constant and resizes both axes', () => {
    const flat = synthetic(13, 7, () => [9, 128, 250]);
    for (const filter of ['bilinear', 'bicubic', 'lanczos', 'box', 'hamming'] as const) {
      const out = resizeRgb(flat, 5, 11, filter);
      expect([out.width, out.height]).toEqual([5, 11]);
      for (let i = 0; i < out.data.length; i += 3)
        expect([out.data[i], out.data[i + 1], out.data[i + 2]]).toEqual([9, 128, 250]);
    }
  });
});

describe('image processor config', () => {
  it('reads old-style CLIP configs (int size/crop, no rescale fields) with the HF defaults', () => {
    const s = parseImageProcessorConfig({
      feature_extractor_type: 'CLIPFeatureExtractor',
      size: 224,
      crop_size: 224,
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      resample: 3,
      image_mean: CLIP_MEAN,
      image_std: CLIP_STD,
    });
    expect(s).toMatchObject({
      kind: 'clip',
      resize: { shortestEdge: 224 },
      centerCrop: { height: 224, width: 224 },
      resample: 'bicubic',
      rescaleFactor: 1 / 255,
      padToSquare: false,
      padColor: [122, 116, 104],
    });
  });

  it('reads SigLIP configs: fixed height×width resize, no crop, mean/std 0.5', () => {
    const s = parseImageProcessorConfig({
      image_processor_type: 'SiglipImageProcessor',
      size: { height: 384, width: 384 },
      resample: 2,
    });
    expect(s).toMatchObject({
      kind: 'siglip',
      resize: { height: 384, width: 384 },
      centerCrop: null,
      resample: 'bilinear',
    });
    expect(s.normalize).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    const p = new ImageProcessor(s);
    expect(p.outputSize(1000, 50)).toEqual({ width: 384, height: 384 });
  });

  it('names the file and field of a bad config', () => {
    expect(() =>
      parseImageProcessorConfig(
        { image_processor_type: 'CLIPImageProcessor', image_std: [1, 2] },
        { source: 'x.json' },
      ),
    ).toThrow(/x\.json[\s\S]*image_std/);
    expect(() => parseImageProcessorConfig({ image_processor_type: 'ViTImageProcessor' })).toThrow(
      /kind: 'clip' \| 'siglip'/,
    );
    expect(() =>
      parseImageProcessorConfig({ image_processor_type: 'SiglipImageProcessor', size: 224 }),
    ).toThrow(/height/);
  });
});
