// Box codec: how the model reads and writes boxes as text, `[x1,y1,x2,y2]` in normalised image coordinates.
//
// Two formats (Shikra-style brackets in both):
// - grid (default): integers on a 0..bins grid, `[4,6,13,15]` at bins=32. Each coordinate is ONE token of the
//   world tokenizer, so a box is 9 tokens and each coordinate is a 33-way choice, which a tiny model learns fast.
//   At bins=32 a 64 px image has 2 px cells: rounding moves an edge by ≤ 1 px, which keeps IoU ≥ 0.6 even for
//   the smallest (9 px small squares) objects, above the 0.5 of Acc@0.5.
// - decimal: Shikra's plain decimals in [0,1], `[0.125,0.188,0.406,0.469]` at 3 decimals.
import type { PixelBox } from './shapes.js';

export type BoxFormat = { format: 'grid'; bins: number } | { format: 'decimal'; decimals: number };

export const DEFAULT_BOX_FORMAT: BoxFormat = { format: 'grid', bins: 32 };

const GRID_PATTERN = /\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]/;
const DECIMAL_NUMBER = '(\\d+(?:\\.\\d+)?|\\.\\d+)';
const DECIMAL_PATTERN = new RegExp(
  `\\[\\s*${DECIMAL_NUMBER}\\s*,\\s*${DECIMAL_NUMBER}\\s*,\\s*${DECIMAL_NUMBER}\\s*,\\s*${DECIMAL_NUMBER}\\s*\\]`,
);

const clamp01 = (value: number): number => Math.max(0, Math.min(1, value));

export class BoxCodec {
  readonly spec: BoxFormat;

  constructor(spec: BoxFormat = DEFAULT_BOX_FORMAT) {
    if (spec.format === 'grid' && (!Number.isInteger(spec.bins) || spec.bins < 1)) {
      throw new Error(`BoxCodec: grid bins must be a positive integer (got ${spec.bins}).`);
    }
    if (
      spec.format === 'decimal' &&
      (!Number.isInteger(spec.decimals) || spec.decimals < 1 || spec.decimals > 6)
    ) {
      throw new Error(`BoxCodec: decimal decimals must be an integer in 1..6 (got ${spec.decimals}).`);
    }
    this.spec = { ...spec };
  }

  /** `[x1,y1,x2,y2]` text for a pixel box of an `imageSize` x `imageSize` image (coordinates clamped to the image). */
  encode(box: PixelBox, imageSize: number): string {
    const values = box.map((v) => clamp01(v / imageSize));
    const spec = this.spec;
    const text =
      spec.format === 'grid'
        ? values.map((v) => String(Math.round(v * spec.bins)))
        : values.map((v) => v.toFixed(spec.decimals));
    return `[${text.join(',')}]`;
  }

  /** The first box written in `text`, in normalised [0,1] coordinates, or null when there is none or it is invalid. */
  decodeNormalised(text: string): PixelBox | null {
    const spec = this.spec;
    const match = (spec.format === 'grid' ? GRID_PATTERN : DECIMAL_PATTERN).exec(text);
    if (match === null) return null;
    const raw = match.slice(1, 5).map(Number);
    if (raw.some((v) => !Number.isFinite(v))) return null;
    const scale = spec.format === 'grid' ? spec.bins : 1;
    if (raw.some((v) => v > scale)) return null;
    const [x1, y1, x2, y2] = raw.map((v) => v / scale) as [number, number, number, number];
    // An inverted box is malformed, not silently reordered: the metric counts it as a miss.
    if (x2 < x1 || y2 < y1) return null;
    return [x1, y1, x2, y2];
  }

  /** The first box written in `text`, in pixels of an `imageSize` x `imageSize` image, or null (see decodeNormalised). */
  decode(text: string, imageSize: number): PixelBox | null {
    const box = this.decodeNormalised(text);
    return box === null
      ? null
      : [box[0] * imageSize, box[1] * imageSize, box[2] * imageSize, box[3] * imageSize];
  }
}

/** Intersection over union of two boxes (0 when either has no area). */
export function boxIou(a: PixelBox, b: PixelBox): number {
  const width = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const height = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const intersection = width * height;
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const union = areaA + areaB - intersection;
  return union > 0 ? intersection / union : 0;
}
