// REC Acc@0.5 of generated answers (e.g. the JSONL `vistune eval --out` writes) against the box truth of
// LLaVA-style records: each record's `truth` lists its assistant turns in order, a turn with a `box` is a
// referring-expression turn, and the n-th prediction of a record answers its n-th assistant turn.
import { ImageTransform } from '@vistune/encoders';
import type { LocationCodec } from '../codecs/types.js';
import { RecAccuracy, type RecAccuracyOptions, type RecAccuracyResult } from '../metrics/rec.js';

/** A record with per-turn truth: `imageSize` (square demo-world images) or `width`/`height` (converters). */
export interface RecTruthRecord {
  id: string;
  imageSize?: number;
  width?: number;
  height?: number;
  truth?: readonly { kind?: string; box?: readonly number[] }[];
}

/** One generated answer: the record id and the text (what `vistune eval --out` writes per line). */
export interface RecPrediction {
  id: string;
  prediction: string;
}

export interface ScoreRecOptions extends RecAccuracyOptions {
  /** Only turns of this truth kind (default: every turn with a box and no kind, or kind `grounding`). */
  kinds?: readonly string[];
}

export interface RecScore extends RecAccuracyResult {
  /** Box turns with no prediction (the eval skipped the record or stopped early); counted as misses. */
  unanswered: number;
}

function imageSizeOf(r: RecTruthRecord): [number, number] {
  const width = r.width ?? r.imageSize;
  const height = r.height ?? r.imageSize;
  if (width === undefined || height === undefined)
    throw new Error(
      `scoreRecPredictions: record ${r.id} has neither imageSize nor width/height: boxes cannot be decoded to pixels`,
    );
  return [width, height];
}

/**
 * Acc@0.5 of `predictions` on the box turns of `records`. Boxes are decoded with `codec` over the original
 * image (its frame must not depend on the processor: `square` or `original`, or `processed` with images the
 * processor does not change).
 */
export function scoreRecPredictions(
  records: readonly RecTruthRecord[],
  predictions: readonly RecPrediction[],
  codec: LocationCodec,
  opts: ScoreRecOptions = {},
): RecScore {
  const kinds = new Set(opts.kinds ?? ['grounding']);
  const answers = new Map<string, string[]>();
  for (const p of predictions) answers.set(p.id, [...(answers.get(p.id) ?? []), p.prediction]);
  const metric = new RecAccuracy(opts);
  let unanswered = 0;
  for (const record of records) {
    const turns = record.truth ?? [];
    const texts = answers.get(record.id) ?? [];
    turns.forEach((turn, n) => {
      if (!turn.box || (turn.kind !== undefined && !kinds.has(turn.kind))) return;
      const text = texts[n];
      if (text === undefined) unanswered++;
      const [width, height] = imageSizeOf(record);
      const transform = ImageTransform.identity(width, height);
      const box = text === undefined ? null : (codec.decodeAll(text, transform).boxes[0] ?? null);
      if (turn.box.length !== 4)
        throw new Error(
          `scoreRecPredictions: record ${record.id} truth[${n}].box has ${turn.box.length} values: give [x1, y1, x2, y2] in pixels`,
        );
      const [x1, y1, x2, y2] = turn.box as [number, number, number, number];
      metric.add(box, [x1, y1, x2, y2]);
    });
  }
  return { ...metric.result(), unanswered };
}
