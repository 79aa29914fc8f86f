// Shikra: plain decimal text `[x1,y1,x2,y2]` in [0,1] with 3 decimals; several boxes `[b1;b2]`; points
// `[x,y]`. Coordinates are relative to the image padded to a centred square (Shikra pads with expand2square
// before its CLIP processor): frame `processed` with a pad-to-square processor, or `square` with any processor.
// With `bins`, coordinates are integers on a 0..bins grid instead (`[4,6,13,15]` at bins=32): each one is a
// single token of a small word-level vocabulary, which a model trained from scratch learns far sooner.
import type { Box, Point } from '../box.js';
import { scanSpans, TextLocationCodec, type UnitParse, validUnitBox } from './base.js';
import type { CodecFrame } from './types.js';

export interface ShikraCodecOptions {
  frame?: CodecFrame;
  /** Decimals written per coordinate (Shikra: 3). Ignored when `bins` is set. */
  decimals?: number;
  /** Integer coordinates on a 0..bins grid instead of decimals in [0,1]. */
  bins?: number;
}

const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const INTEGER = /^\d+$/;

export class ShikraCodec extends TextLocationCodec {
  readonly name = 'shikra';
  readonly decimals: number;
  readonly bins: number | undefined;

  constructor(opts: ShikraCodecOptions = {}) {
    super(opts.frame ?? 'processed');
    this.decimals = opts.decimals ?? 3;
    this.bins = opts.bins;
    if (!Number.isInteger(this.decimals) || this.decimals < 1 || this.decimals > 6)
      throw new Error(`shikra codec: decimals must be an integer in 1..6, got ${this.decimals}`);
    if (this.bins !== undefined && (!Number.isInteger(this.bins) || this.bins < 1))
      throw new Error(`shikra codec: bins must be a positive integer, got ${this.bins}`);
  }

  private format(values: readonly number[]): string {
    const bins = this.bins;
    return values
      .map((v) => (bins === undefined ? v.toFixed(this.decimals) : String(Math.round(v * bins))))
      .join(',');
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
        const values = parts.map((s) => (this.bins === undefined ? Number(s) : Number(s) / this.bins));
        const numeric = parts.every((s) => (this.bins === undefined ? DECIMAL : INTEGER).test(s));
        if (numeric && parts.length === 4 && validUnitBox(values)) out.boxes.push(values);
        else if (numeric && parts.length === 2 && values.every((v) => v <= 1))
          out.points.push([values[0], values[1]]);
        else out.malformed++;
      }
    }
    return out;
  }
}
