// Object masks: the exact pixels of each shape (from the rasteriser's own subsamples) and instance-map PNGs
// (0 = background, k + 1 = object k). Records store masks as COCO RLE with @vistune/tasks-grounding's maskToRle.
import type { BinaryMask } from '@vistune/tasks-grounding';
import sharp from 'sharp';
import { objectCoverage } from './render.js';
import type { SceneLayout } from './scene.js';

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
