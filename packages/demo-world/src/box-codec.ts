// How the world's records write boxes: Shikra brackets `[x1,y1,x2,y2]` over the whole square image, through
// @vistune/tasks-grounding's ShikraCodec (the one implementation of that text). Two formats:
// - grid (default): integers on a 0..bins grid, `[4,6,13,15]` at bins=32. Each coordinate is ONE token of the
//   world tokenizer, so a box is 9 tokens and each coordinate is a 33-way choice, which a tiny model learns fast.
//   At bins=32 a 64 px image has 2 px cells: rounding moves an edge by ≤ 1 px, which keeps IoU ≥ 0.6 even for
//   the smallest (9 px small squares) objects, above the 0.5 of Acc@0.5.
// - decimal: Shikra's plain decimals in [0,1], `[0.125,0.188,0.406,0.469]` at 3 decimals.
import { ImageTransform } from '@vistune/encoders';
import { ShikraCodec } from '@vistune/tasks-grounding';
import type { PixelBox } from './shapes.js';

export type BoxFormat = { format: 'grid'; bins: number } | { format: 'decimal'; decimals: number };

export const DEFAULT_BOX_FORMAT: BoxFormat = { format: 'grid', bins: 32 };

/** A world box format bound to square images of a given side (the world's images are never padded or cropped). */
export class BoxCodec {
  readonly spec: BoxFormat;
  private readonly codec: ShikraCodec;

  constructor(spec: BoxFormat = DEFAULT_BOX_FORMAT) {
    this.codec =
      spec.format === 'grid'
        ? new ShikraCodec({ bins: spec.bins })
        : new ShikraCodec({ decimals: spec.decimals });
    this.spec = { ...spec };
  }

  /** `[x1,y1,x2,y2]` text for a pixel box of an `imageSize` x `imageSize` image (coordinates clamped to the image). */
  encode(box: PixelBox, imageSize: number): string {
    return this.codec.encodeBox(box, ImageTransform.identity(imageSize, imageSize));
  }

  /** The first well-formed box in `text`, in pixels of an `imageSize` x `imageSize` image, or null when none. */
  decode(text: string, imageSize: number): PixelBox | null {
    return this.codec.decodeAll(text, ImageTransform.identity(imageSize, imageSize)).boxes[0] ?? null;
  }
}
