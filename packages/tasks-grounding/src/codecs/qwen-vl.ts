// Qwen-VL: `<ref>phrase</ref><box>(x1,y1),(x2,y2)</box>` with integers on a 0–999 grid relative to the image
// (Qwen-VL resizes to 448×448 without cropping). The docs say [0,1000); the official grounding eval divides by
// 999, so the default denominator is 999: n = round(v·999), v = n/999.
import type { Box } from '../box.js';
import { scanSpans, TextLocationCodec, type UnitParse, validUnitBox } from './base.js';
import type { CodecFrame } from './types.js';

export interface QwenVlCodecOptions {
  frame?: CodecFrame;
  /** v = n / denominator (999 as Qwen-VL's eval; 1000 as its docs). Integers stay in 0..999. */
  denominator?: number;
}

const GRID_MAX = 999;
const BOX_BODY = /^\s*\(\s*(\d{1,4})\s*,\s*(\d{1,4})\s*\)\s*,\s*\(\s*(\d{1,4})\s*,\s*(\d{1,4})\s*\)\s*$/;
const REF = /<ref>([^<]*)<\/ref>((?:\s*<box>[^<]*<\/box>)+)/g;

export class QwenVlCodec extends TextLocationCodec {
  readonly name = 'qwen_vl';
  override readonly specialTokens = ['<ref>', '</ref>', '<box>', '</box>'] as const;
  readonly denominator: number;

  constructor(opts: QwenVlCodecOptions = {}) {
    super(opts.frame ?? 'processed');
    this.denominator = opts.denominator ?? 999;
    if (!Number.isInteger(this.denominator) || this.denominator < GRID_MAX)
      throw new Error(`qwen_vl codec: denominator must be an integer ≥ 999, got ${this.denominator}`);
  }

  private quantise(v: number): number {
    return Math.min(GRID_MAX, Math.max(0, Math.round(v * this.denominator)));
  }

  protected formatBoxes(units: readonly Box[]): string {
    return units
      .map((u) => {
        const [x1, y1, x2, y2] = u.map((v) => this.quantise(v));
        return `<box>(${x1},${y1}),(${x2},${y2})</box>`;
      })
      .join('');
  }

  protected formatRef(phrase: string, boxesText: string): string {
    return `<ref>${phrase}</ref>${boxesText}`;
  }

  private parseBody(body: string): Box | null {
    const m = BOX_BODY.exec(body);
    if (!m) return null;
    const ints = m.slice(1, 5).map(Number);
    if (ints.some((n) => n > GRID_MAX)) return null;
    const unit = ints.map((n) => n / this.denominator);
    return validUnitBox(unit) ? unit : null;
  }

  protected parse(text: string): UnitParse {
    const out: UnitParse = { boxes: [], points: [], refs: [], malformed: 0 };
    for (const span of scanSpans(text, '<box>', '</box>')) {
      const box = span.closed ? this.parseBody(span.body) : null;
      if (box) out.boxes.push(box);
      else out.malformed++;
    }
    for (const m of text.matchAll(REF)) {
      const boxes = scanSpans(m[2], '<box>', '</box>')
        .map((s) => this.parseBody(s.body))
        .filter((b): b is Box => b !== null);
      if (boxes.length) out.refs.push({ phrase: m[1], boxes });
    }
    return out;
  }
}
