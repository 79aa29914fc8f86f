// What scripts need of a predicted mask without the pixels: its size, area, tight box and COCO RLE counts.
import { maskToBox } from '../box.js';
import { maskToRle } from '../refcoco/index.js';

export interface MaskSummary {
  /** [height, width], COCO's order. */
  size: [number, number];
  /** Pixels set. */
  area: number;
  /** Tight [x1, y1, x2, y2] in pixel-edge coordinates, or null for an empty mask. */
  bbox: [number, number, number, number] | null;
  /** COCO uncompressed RLE: alternating run lengths, column-major, starting with a (possibly empty) run of 0s. */
  counts: number[];
}

/** Summary of a row-major binary mask (any non-zero value is set). */
export function maskSummary(mask: Uint8Array, width: number, height: number): MaskSummary {
  const box = maskToBox(mask, width, height);
  let area = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) area++;
  return {
    size: [height, width],
    area,
    bbox: box ? [box[0], box[1], box[2], box[3]] : null,
    counts: [...(maskToRle(mask, width, height).counts as readonly number[])],
  };
}
