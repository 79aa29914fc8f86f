// Shikra: plain decimal text `[x1,y1,x2,y2]` in [0,1] with 3 decimals; several boxes `[b1;b2]`; points
// `[x,y]`. Coordinates are relative to the image padded to a centred square (Shikra pads with expand2square
// before its CLIP processor): frame `processed` with a pad-to-square processor, or `square` with any processor.
import type { Box, Point } from '../box.js';
import { scanSpans, TextLocationCodec, type UnitParse, validUnitBox } from './base.js';
import type { CodecFrame } from './types.js';

export interface ShikraCodecOptions {
  frame?: CodecFrame;
  /** Decimals written per coordinate (Shikra: 3). */
  decimals?: number;
}

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

export class ShikraCodec extends TextLocationCodec {
  readonly name = 'shikra';
  readonly decimals: number;

  constructor(opts: ShikraCodecOptions = {}) {
    super(opts.frame ?? 'processed');
    this.decimals = opts.decimals ?? 3;
    if (!Number.isInteger(this.decimals) || this.decimals < 1 || this.decimals > 6)
      throw new Error(`shikra codec: decimals must be an integer in 1..6, got ${this.decimals}`);
  }

  private format(values: readonly number[]): string {
    return values.map((v) => v.toFixed(this.decimals)).join(',');
  }

  protected formatBoxes(units: readonly Box[]): string {
    return `[${units.map((u) => this.format(u)).join(';')}]`;
  }

  protected override formatPoint(unit: Point): string {
    return `[${this.format(unit)}]`;
  }

  protected formatRef(phrase: string, boxesText: string): string {
    return `${phrase}${boxesText}`;
  }

  protected parse(text: string): UnitParse {
    const out: UnitParse = { boxes: [], points: [], refs: [], malformed: 0 };
    for (const span of scanSpans(text, '[', ']')) {
      // Only brackets that open with a number are box attempts (`[INST]` is template text).
      if (!/^\s*[\d.]/.test(span.body)) continue;
      if (!span.closed) {
        out.malformed++;
        continue;
      }
      for (const group of span.body.split(';')) {
        const parts = group.split(',').map((s) => s.trim());
        const values = parts.map(Number);
        const numeric = parts.every((s) => NUMBER.test(s));
        if (numeric && parts.length === 4 && validUnitBox(values)) out.boxes.push(values);
        else if (numeric && parts.length === 2 && values.every((v) => v <= 1))
          out.points.push([values[0], values[1]]);
        else out.malformed++;
      }
    }
    return out;
  }
}
