// Kosmos-2 location tokens: the image is cut into P×P cells (P = 32 → 1024 tokens `<patch_index_0000>` …
// `<patch_index_1023>`, index = row·P + col). A box is the cell of its top-left corner and the cell of its
// bottom-right corner, `<object><patch_index_UL><patch_index_LR></object>`; several boxes are joined by
// `</delimiter_of_multi_objects/>`; phrases `<phrase>…</phrase><object>…</object>`. Encoding as Kosmos-2's
// processor: ul = floor(v·P), lr = ceil(v·P − 1). Decoding as its evaluation: cell centres, except when the
// two cells are equal or share a row or column, then the full cell extents.
import type { Box } from '../box.js';
import { scanSpans, TextLocationCodec, type UnitParse } from './base.js';
import type { CodecFrame } from './types.js';

export interface Kosmos2CodecOptions {
  frame?: CodecFrame;
  /** Cells per side (Kosmos-2: 32). */
  bins?: number;
}

const DELIMITER = '</delimiter_of_multi_objects/>';
const PAIR = /^<patch_index_(\d{4})><patch_index_(\d{4})>$/;
const REF = /<phrase>([^<]*)<\/phrase>\s*<object>(.*?)<\/object>/gs;
// Corners that went through the image transform carry float noise (4/32 → 0.12499999999).
const EPS = 1e-6;

export const KOSMOS2_STRUCTURE_TOKENS = [
  '<grounding>',
  '<phrase>',
  '</phrase>',
  '<object>',
  '</object>',
  DELIMITER,
] as const;

export const patchIndexToken = (index: number): string => `<patch_index_${String(index).padStart(4, '0')}>`;

export class Kosmos2Codec extends TextLocationCodec {
  readonly name = 'kosmos2';
  readonly bins: number;
  override readonly specialTokens: readonly string[];

  constructor(opts: Kosmos2CodecOptions = {}) {
    super(opts.frame ?? 'processed');
    this.bins = opts.bins ?? 32;
    if (!Number.isInteger(this.bins) || this.bins < 1 || this.bins > 100)
      throw new Error(`kosmos2 codec: bins must be an integer in 1..100 (4-digit indices), got ${this.bins}`);
    const patches = Array.from({ length: this.bins * this.bins }, (_, i) => patchIndexToken(i));
    this.specialTokens = [...KOSMOS2_STRUCTURE_TOKENS, ...patches];
  }

  private cell(n: number): number {
    return Math.min(this.bins - 1, Math.max(0, n));
  }

  /** [0,1] box → [top-left cell index, bottom-right cell index]. */
  boxToIndices(unit: Box): [number, number] {
    const P = this.bins;
    const ulx = this.cell(Math.floor(unit[0] * P + EPS));
    const uly = this.cell(Math.floor(unit[1] * P + EPS));
    // A degenerate box on a cell edge would give lr < ul: keep it in the ul cell.
    const lrx = Math.max(ulx, this.cell(Math.ceil(unit[2] * P - 1 - EPS)));
    const lry = Math.max(uly, this.cell(Math.ceil(unit[3] * P - 1 - EPS)));
    return [uly * P + ulx, lry * P + lrx];
  }

  /** Cell indices → [0,1] box, with Kosmos-2's centre / full-cell rule; null when inverted or out of range. */
  indicesToBox(ul: number, lr: number): Box | null {
    const P = this.bins;
    if (ul >= P * P || lr >= P * P) return null;
    const [ulx, uly, lrx, lry] = [ul % P, Math.floor(ul / P), lr % P, Math.floor(lr / P)];
    if (lrx < ulx || lry < uly) return null;
    const cell = 1 / P;
    if (ul === lr || ulx === lrx || uly === lry)
      return [ulx * cell, uly * cell, (lrx + 1) * cell, (lry + 1) * cell];
    const half = cell / 2;
    return [ulx * cell + half, uly * cell + half, lrx * cell + half, lry * cell + half];
  }

  protected formatBoxes(units: readonly Box[]): string {
    const pairs = units.map((u) => this.boxToIndices(u).map(patchIndexToken).join(''));
    return `<object>${pairs.join(DELIMITER)}</object>`;
  }

  protected formatRef(phrase: string, boxesText: string): string {
    return `<phrase>${phrase}</phrase>${boxesText}`;
  }

  private parseBody(body: string): { boxes: Box[]; malformed: number } {
    const out = { boxes: [] as Box[], malformed: 0 };
    for (const part of body.split(DELIMITER)) {
      const m = PAIR.exec(part.trim());
      const box = m ? this.indicesToBox(Number(m[1]), Number(m[2])) : null;
      if (box) out.boxes.push(box);
      else out.malformed++;
    }
    return out;
  }

  protected parse(text: string): UnitParse {
    const out: UnitParse = { boxes: [], points: [], refs: [], malformed: 0 };
    for (const span of scanSpans(text, '<object>', '</object>')) {
      if (!span.closed) {
        out.malformed++;
        continue;
      }
      const parsed = this.parseBody(span.body);
      out.boxes.push(...parsed.boxes);
      out.malformed += parsed.malformed;
    }
    for (const m of text.matchAll(REF)) {
      const { boxes } = this.parseBody(m[2]);
      if (boxes.length) out.refs.push({ phrase: m[1], boxes });
    }
    return out;
  }
}
