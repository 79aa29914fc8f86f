// Resource bounds: a tiny file that decodes, pads or resizes to gigabytes is refused before allocating, with
// an error naming the image and the size; sizes just under the bounds still work.
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageProcessor } from './processor.js';
import { resizeRgb } from './resample.js';
import { checkImageSize, decodeImage, MAX_IMAGE_PIXELS, MAX_RESIZED_EDGE } from './rgb.js';

const fixtureDir = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const clipConfig = JSON.parse(readFileSync(`${fixtureDir}preprocessor_config.json`, 'utf8'));

/** A solid-colour PNG of any size: a few KB even for millions of pixels. */
function solidPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 9, g: 99, b: 199 } } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** Peak growth of resident memory while `fn` runs, in MiB (sampled every 5 ms). */
async function peakRssGrowthMiB(fn: () => Promise<unknown>): Promise<number> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    await fn().catch(() => undefined);
  } finally {
    clearInterval(timer);
  }
  return (Math.max(peak, process.memoryUsage.rss()) - base) / 2 ** 20;
}

describe('image size bounds', () => {
  it('a 1×2 000 000 PNG (a few KB) is refused before the shortest-edge resize allocates gigabytes', async () => {
    const png = await solidPng(1, 2_000_000);
    expect(png.length).toBeLessThan(20_000);
    const processor = ImageProcessor.fromConfig(clipConfig); // shortest edge 32 → 32 × 64 000 000
    const error = await processor.preprocess(png).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /The image resized would be 32×64000000 pixels, more than 67108864 pixels: crop or downscale it first/,
    );
    expect(await peakRssGrowthMiB(() => processor.preprocess(png))).toBeLessThan(200);
  });

  it('LLaVA pad-to-square of a long strip is refused before the canvas is allocated', async () => {
    const processor = ImageProcessor.fromConfig(clipConfig, { padToSquare: true });
    expect(() => processor.checkSizes(1, 100_000, 'Image strip.png')).toThrow(
      /Image strip\.png padded to square would be 100000×100000 pixels, more than 67108864 pixels/,
    );
    expect(() => processor.checkSizes(640, 480)).not.toThrow();
  });

  it('decoding refuses a header declaring more than MAX_IMAGE_PIXELS, naming the file', async () => {
    const png = await solidPng(10_000, 7_000); // 70 M pixels > 2^26
    await expect(decodeImage(png)).rejects.toThrow(
      /Image an in-memory image of \d+ bytes decoded would be 10000×7000 pixels, more than 67108864 pixels/,
    );
    const ok = await decodeImage(await solidPng(4, 3));
    expect([ok.width, ok.height, ok.data[0], ok.data[2]]).toEqual([4, 3, 9, 199]);
  });

  it('bounds the resized long edge and the resize pass directly', () => {
    expect(() => checkImageSize(MAX_RESIZED_EDGE + 1, 1, 'resized')).toThrow(
      /more than an edge of 16384 pixels/,
    );
    expect(() => checkImageSize(MAX_RESIZED_EDGE, 1, 'resized')).not.toThrow();
    expect(() => checkImageSize(8192, 8192, 'decoded')).not.toThrow(); // exactly 2^26
    expect(() => checkImageSize(8192, 8193, 'decoded')).toThrow(/more than 67108864 pixels/);
    expect(MAX_IMAGE_PIXELS).toBe(2 ** 26);
    const strip = { width: 1, height: 70_000, data: new Uint8Array(3 * 70_000) };
    expect(() => resizeRgb(strip, 1000, 70_000, 'bicubic')).toThrow(/resized would be 1000×70000 pixels/);
  });
});
