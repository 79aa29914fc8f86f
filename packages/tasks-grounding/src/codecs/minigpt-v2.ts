// MiniGPT-v2: `{<x1><y1><x2><y2>}` with integers on a 0–100 grid of the image (resized to a square without
// cropping); several boxes joined by `<delim>`; phrases `<p>phrase</p> {…}`. Encoding truncates as MiniGPT-v2's
// data code does (`int(v·100)`), so decoding n/100 lands up to one cell (1/100) towards the top-left.
import type { Box } from '../box.js';
import { scanSpans, TextLocationCodec, type UnitParse, validUnitBox } from './base.js';
import type { CodecFrame } from './types.js';

export interface MiniGptV2CodecOptions {
  frame?: CodecFrame;
  /** Grid size (MiniGPT-v2: 100). */
  bins?: number;
  /** `floor` = MiniGPT-v2's int() truncation; `round` halves the worst-case error. */
  rounding?: 'floor' | 'round';
}

// Coordinates that went through toOriginal/toProcessed carry float noise: 0.29·100 = 28.999999999999996.
const FLOOR_EPS = 1e-6;
const BODY = /^(\d{1,3})><(\d{1,3})><(\d{1,3})><(\d{1,3})>$/;
const REF = /<p>([^<]*)<\/p>\s*((?:\{<[^}]*\}(?:\s*<delim>\s*)?)+)/g;

export class MiniGptV2Codec extends TextLocationCodec {
  readonly name = 'minigpt_v2';
  readonly bins: number;
  readonly rounding: 'floor' | 'round';

  constructor(opts: MiniGptV2CodecOptions = {}) {
    super(opts.frame ?? 'processed');
    this.bins = opts.bins ?? 100;
    this.rounding = opts.rounding ?? 'floor';
    if (!Number.isInteger(this.bins) || this.bins < 1 || this.bins > 999)
      throw new Error(`minigpt_v2 codec: bins must be an integer in 1..999, got ${this.bins}`);
  }

  private quantise(v: number): number {
    const n = this.rounding === 'floor' ? Math.floor(v * this.bins + FLOOR_EPS) : Math.round(v * this.bins);
    return Math.min(this.bins, Math.max(0, n));
  }

  protected formatBoxes(units: readonly Box[]): string {
    return units.map((u) => `{${u.map((v) => `<${this.quantise(v)}>`).join('')}}`).join('<delim>');
  }

  protected formatRef(phrase: string, boxesText: string): string {
    return `<p>${phrase}</p> ${boxesText}`;
  }

  private parseBody(body: string): Box | null {
    const m = BODY.exec(body);
    if (!m) return null;
    const unit = m.slice(1, 5).map((s) => Number(s) / this.bins);
    return validUnitBox(unit) ? unit : null;
  }

  protected parse(text: string): UnitParse {
    const out: UnitParse = { boxes: [], points: [], refs: [], malformed: 0 };
    for (const span of scanSpans(text, '{<', '}')) {
      const box = span.closed ? this.parseBody(span.body) : null;
      if (box) out.boxes.push(box);
      else out.malformed++;
    }
    for (const m of text.matchAll(REF)) {
      const boxes = scanSpans(m[2], '{<', '}')
        .map((s) => this.parseBody(s.body))
        .filter((b): b is Box => b !== null);
      if (boxes.length) out.refs.push({ phrase: m[1], boxes });
    }
    return out;
  }
}
