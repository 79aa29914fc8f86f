// Object masks: the exact pixels of each shape (from the rasteriser's own subsamples), COCO-style run-length
// encoding for storing them in records, and instance-map PNGs (0 = background, k + 1 = object k).
import sharp from 'sharp';
import { objectCoverage } from './render.js';
import type { SceneLayout } from './scene.js';

/** A binary mask, row-major, one byte per pixel (1 = object, 0 = not). */
export interface BinaryMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * COCO's uncompressed RLE: `size` is [height, width]; `counts` alternate runs of 0s and 1s over the pixels in
 * column-major (Fortran) order, starting with a (possibly empty) run of 0s, so pycocotools reads it as is.
 */
export interface MaskRle {
  size: [number, number];
  counts: number[];
}

/** A pixel belongs to an object when at least half of its 4×4 subsamples lie inside the shape. */
export const MASK_COVERAGE_THRESHOLD = 0.5;

/** One mask per object of the layout, in `layout.objects` order. */
export function renderObjectMasks(layout: SceneLayout): BinaryMask[] {
  const size = layout.imageSize;
  return layout.objects.map((object) => {
    const data = new Uint8Array(size * size);
    objectCoverage(object, size, (px, py, coverage) => {
      if (coverage >= MASK_COVERAGE_THRESHOLD) data[py * size + px] = 1;
    });
    return { width: size, height: size, data };
  });
}

/** Row-major mask → COCO uncompressed RLE (column-major runs, first run counts 0s). */
export function encodeMaskRle(mask: BinaryMask): MaskRle {
  const { width, height, data } = mask;
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const value = data[y * width + x] ? 1 : 0;
      if (value !== current) {
        counts.push(run);
        current = value;
        run = 0;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** COCO uncompressed RLE → row-major mask; errors name the field when the runs do not cover the image. */
export function decodeMaskRle(rle: MaskRle): BinaryMask {
  const [height, width] = rle.size;
  const total = rle.counts.reduce((sum, n) => sum + n, 0);
  if (total !== width * height) {
    throw new Error(
      `decodeMaskRle: counts sum to ${total} but size [${height}, ${width}] has ${width * height} pixels; the RLE is corrupt.`,
    );
  }
  const data = new Uint8Array(width * height);
  let index = 0;
  rle.counts.forEach((run, k) => {
    for (let i = 0; i < run; i++, index++) {
      if (k % 2 === 1) data[(index % height) * width + Math.floor(index / height)] = 1;
    }
  });
  return { width, height, data };
}

/** Instance map of a layout: 0 background, k + 1 where object k covers the pixel. */
export function instanceMap(layout: SceneLayout): Uint8Array {
  const size = layout.imageSize;
  const map = new Uint8Array(size * size);
  renderObjectMasks(layout).forEach((mask, k) => {
    for (let i = 0; i < map.length; i++) if (mask.data[i]) map[i] = k + 1;
  });
  return map;
}

/** The instance map as an 8-bit greyscale PNG (fixed settings, so the bytes are reproducible). */
export async function instanceMapToPng(layout: SceneLayout): Promise<Buffer> {
  const size = layout.imageSize;
  const map = instanceMap(layout);
  return sharp(Buffer.from(map.buffer, map.byteOffset, map.byteLength), {
    raw: { width: size, height: size, channels: 1 },
  })
    .toColourspace('b-w') // else sharp writes the single channel as RGB
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}
