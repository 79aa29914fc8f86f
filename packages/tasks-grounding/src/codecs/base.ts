// What every text codec shares: checking input boxes, mapping them into the codec's [0,1] frame and back, and
// scanning model text for spans without ever throwing. Subclasses only format and parse [0,1] coordinates.
import type { AnswerAnnotation, AnswerContext } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import type { Box, Point } from '../box.js';
import { drawBoxes } from '../draw/index.js';
import { boxToUnit, frameMap, unitToBox } from './frame.js';
import type { CodecFrame, DecodeResult, GroundedPhrase, LocationCodec } from './types.js';

/** What a codec's parser finds, in [0,1] frame coordinates. */
export interface UnitParse {
  boxes: Box[];
  points: Point[];
  refs: { phrase: string; boxes: Box[] }[];
  malformed: number;
}

export interface Span {
  body: string;
  /** false when the span ran into the next opener or the end of the text without its closer. */
  closed: boolean;
}

/** Spans from each `open` to its `close`; one cut short by the next `open` or the end is returned unclosed. */
export function scanSpans(text: string, open: string, close: string): Span[] {
  const out: Span[] = [];
  let at = text.indexOf(open);
  while (at >= 0) {
    const from = at + open.length;
    const closeAt = text.indexOf(close, from);
    const nextOpen = text.indexOf(open, from);
    if (closeAt >= 0 && (nextOpen < 0 || closeAt < nextOpen)) {
      out.push({ body: text.slice(from, closeAt), closed: true });
      at = text.indexOf(open, closeAt + close.length);
    } else {
      out.push({ body: text.slice(from, nextOpen < 0 ? text.length : nextOpen), closed: false });
      at = nextOpen;
    }
  }
  return out;
}

/** A well-formed [0,1] box: finite, inside the frame, not inverted. */
export function validUnitBox(b: readonly number[]): b is Box {
  return (
    b.length === 4 && b.every((v) => Number.isFinite(v) && v >= 0 && v <= 1) && b[2] >= b[0] && b[3] >= b[1]
  );
}

function checkBox(box: Box, where: string): void {
  if (box.length !== 4 || !box.every(Number.isFinite))
    throw new Error(`${where}: box ${JSON.stringify(box)} must be four finite numbers [x1, y1, x2, y2]`);
  if (box[2] < box[0] || box[3] < box[1])
    throw new Error(
      `${where}: box ${JSON.stringify(box)} has x2 < x1 or y2 < y1; boxes are [x1, y1, x2, y2] (convert COCO [x, y, w, h] with xywhToXyxy)`,
    );
}

export abstract class TextLocationCodec implements LocationCodec {
  abstract readonly name: string;
  readonly specialTokens: readonly string[] = [];

  constructor(readonly frame: CodecFrame) {}

  /** [0,1] boxes → text in the codec's multi-box syntax. */
  protected abstract formatBoxes(units: readonly Box[]): string;
  /** Wraps an encoded box text with a phrase. */
  protected abstract formatRef(phrase: string, boxesText: string): string;
  protected abstract parse(text: string): UnitParse;

  /** Codecs with a point syntax override this; the rest write the degenerate box. */
  protected formatPoint(unit: Point): string {
    return this.formatBoxes([[unit[0], unit[1], unit[0], unit[1]]]);
  }

  encodeBox(box: Box, transform: ImageTransform): string {
    return this.encodeBoxes([box], transform);
  }

  encodeBoxes(boxes: readonly Box[], transform: ImageTransform): string {
    if (boxes.length === 0) throw new Error(`${this.name} codec: encodeBoxes needs at least one box`);
    const map = frameMap(transform, this.frame);
    return this.formatBoxes(
      boxes.map((box) => {
        checkBox(box, `${this.name} codec`);
        return boxToUnit(box, map);
      }),
    );
  }

  encodePoint(point: Point, transform: ImageTransform): string {
    if (point.length !== 2 || !point.every(Number.isFinite))
      throw new Error(`${this.name} codec: point ${JSON.stringify(point)} must be two finite numbers [x, y]`);
    const [x1, y1] = boxToUnit([point[0], point[1], point[0], point[1]], frameMap(transform, this.frame));
    return this.formatPoint([x1, y1]);
  }

  encodeRef(phrase: string, boxes: readonly Box[], transform: ImageTransform): string {
    return this.formatRef(phrase, this.encodeBoxes(boxes, transform));
  }

  /** After generation (`--codec`): the answer's boxes in original pixels for --json, and drawn by --overlay. */
  annotate(ctx: AnswerContext): AnswerAnnotation | undefined {
    const transform = Object.values(ctx.processed)
      .flat()
      .map((p) => p.transform)
      .find((t): t is ImageTransform => t instanceof ImageTransform);
    if (!transform) return undefined;
    const located = this.decodeAll(ctx.text, transform);
    const bad = located.malformed ? ` (${located.malformed} malformed)` : '';
    return {
      json: { boxes: located.boxes, points: located.points, malformedBoxes: located.malformed },
      lines: [`boxes: ${JSON.stringify(located.boxes)}${bad}`],
      draw: async (input, output) => {
        const boxes = located.boxes.map((box, i) => ({ box, label: String(i + 1), color: 'red' as const }));
        await drawBoxes(input, boxes, output);
      },
    };
  }

  decodeAll(text: string, transform: ImageTransform): DecodeResult {
    const map = frameMap(transform, this.frame);
    const parsed = this.parse(text);
    const toBox = (u: Box) => unitToBox(u, map, transform);
    const refs: GroundedPhrase[] = parsed.refs.map((r) => ({ phrase: r.phrase, boxes: r.boxes.map(toBox) }));
    const points = parsed.points.map((p): Point => {
      const b = toBox([p[0], p[1], p[0], p[1]]);
      return [b[0], b[1]];
    });
    return { boxes: parsed.boxes.map(toBox), points, refs, malformed: parsed.malformed };
  }
}
