// Box geometry shared by codecs, metrics, converters and region inputs. Boxes are [x1, y1, x2, y2] in continuous
// pixel-edge coordinates of the ORIGINAL image ((0,0) = top-left corner of the first pixel), x2 ≥ x1, y2 ≥ y1.

export type Box = readonly [x1: number, y1: number, x2: number, y2: number];
export type Point = readonly [x: number, y: number];

export const boxArea = (b: Box): number => Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);

/** Area of the overlap of two boxes (0 when they do not overlap). */
export function boxIntersection(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Intersection over union, COCO's continuous form (no +1); 0 when the union is empty. */
export function boxIou(a: Box, b: Box): number {
  const inter = boxIntersection(a, b);
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** COCO `bbox` [x, y, w, h] → [x1, y1, x2, y2]. */
export const xywhToXyxy = (b: readonly number[]): Box => [b[0], b[1], b[0] + b[2], b[1] + b[3]];

export const clampBox = (b: Box, width: number, height: number): Box => [
  Math.min(Math.max(b[0], 0), width),
  Math.min(Math.max(b[1], 0), height),
  Math.min(Math.max(b[2], 0), width),
  Math.min(Math.max(b[3], 0), height),
];

/** A point as a small box of side `2·radius` centred on it (clamped to the image), for region inputs. */
export function pointToBox(p: Point, radius: number, width: number, height: number): Box {
  return clampBox([p[0] - radius, p[1] - radius, p[0] + radius, p[1] + radius], width, height);
}

/** Tight box around the nonzero pixels of a row-major binary mask; null for an empty mask. */
export function maskToBox(mask: Uint8Array, width: number, height: number): Box | null {
  if (mask.length !== width * height)
    throw new Error(`maskToBox: mask has ${mask.length} values, expected width·height = ${width * height}`);
  let x1 = width;
  let y1 = height;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
    }
  }
  // Pixel (x, y) covers [x, x+1): the box ends one past the last set pixel.
  return x2 < 0 ? null : [x1, y1, x2 + 1, y2 + 1];
}
