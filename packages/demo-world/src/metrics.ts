// Scores of a model's answers on world records, per record kind: exact match, counting accuracy, grounding Acc@0.5.
import { boxIou } from '@vistune/tasks-grounding';
import { BoxCodec } from './box-codec.js';
import { ALL_RECORD_KINDS, type RecordKind, type TurnTruth, type WorldRecord } from './instructions.js';

/** Lowercase, trim, collapse spaces, strip trailing punctuation: "Red." and " red" both become "red". */
export function normaliseAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s.,!?;:]+$/, '');
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

/** The first count in `text`: digits or a number word up to ten ("3", "There are three." → 3), else null. */
export function parseCount(text: string): number | null {
  const match = /\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten)\b/i.exec(text);
  if (match === null) return null;
  const word = (match[1] as string).toLowerCase();
  const index = NUMBER_WORDS.indexOf(word);
  return index >= 0 ? index : Number(word);
}

/** Word-level F1 between normalised prediction and answer (the SQuAD-style bag-of-words overlap). */
export function tokenF1(prediction: string, answer: string): number {
  const words = (text: string): string[] =>
    normaliseAnswer(text)
      .split(/[^a-z0-9]+/)
      .filter((w) => w.length > 0);
  const predicted = words(prediction);
  const truth = words(answer);
  if (predicted.length === 0 || truth.length === 0) return predicted.length === truth.length ? 1 : 0;
  const remaining = new Map<string, number>();
  for (const word of truth) remaining.set(word, (remaining.get(word) ?? 0) + 1);
  let common = 0;
  for (const word of predicted) {
    const left = remaining.get(word) ?? 0;
    if (left > 0) {
      common++;
      remaining.set(word, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / predicted.length;
  const recall = common / truth.length;
  return (2 * precision * recall) / (precision + recall);
}

export interface KindScore {
  kind: RecordKind | 'overall';
  records: number;
  /** Assistant turns scored (a conversation has several). */
  turns: number;
  /** Turns without a prediction (scored as wrong). */
  missing: number;
  /** Fraction of turns whose normalised prediction equals the normalised answer. */
  exactMatch: number;
  /** The kind's headline metric per turn: IoU ≥ 0.5 for box answers, the parsed count for counts, else exact match. */
  accuracy: number;
  /** Mean word-level F1 (meaningful for descriptions). */
  tokenF1: number;
  /** Over turns whose answer is a box: fraction with IoU ≥ 0.5 (malformed and missing boxes are misses). */
  groundingAcc50: number | null;
  /** Over turns whose answer is a box: mean IoU, malformed and missing boxes counting 0 (gIoU over boxes). */
  groundingMeanIou: number | null;
  /** Box-answer turns whose prediction holds no valid box (missing predictions are counted in `missing`). */
  malformedBoxes: number;
  /** Over counting turns: fraction whose first number equals the true count. */
  countAccuracy: number | null;
}

export interface WorldScores {
  rows: KindScore[];
  overall: KindScore;
}

/** Predictions per record id: the assistant text, or one text per gpt turn for multi-turn records. */
export type WorldPredictions = Readonly<Record<string, string | readonly string[]>>;

export interface ScoreOptions {
  /** Codec the answers were written with (default: the default grid codec). */
  codec?: BoxCodec;
}

interface Tally {
  records: number;
  turns: number;
  missing: number;
  exact: number;
  correct: number;
  f1: number;
  boxTurns: number;
  boxHits: number;
  boxIou: number;
  malformed: number;
  countTurns: number;
  countHits: number;
}

const emptyTally = (): Tally => ({
  records: 0,
  turns: 0,
  missing: 0,
  exact: 0,
  correct: 0,
  f1: 0,
  boxTurns: 0,
  boxHits: 0,
  boxIou: 0,
  malformed: 0,
  countTurns: 0,
  countHits: 0,
});

function scoreTurn(
  tally: Tally,
  truth: TurnTruth,
  prediction: string | undefined,
  imageSize: number,
  codec: BoxCodec,
): void {
  tally.turns++;
  if (prediction === undefined) tally.missing++;
  const text = prediction ?? '';
  const exact = normaliseAnswer(text) === normaliseAnswer(truth.answer);
  if (exact) tally.exact++;
  tally.f1 += tokenF1(text, truth.answer);
  if (truth.kind === 'grounding' && truth.box !== undefined) {
    tally.boxTurns++;
    const predicted = codec.decode(text, imageSize);
    if (predicted === null && prediction !== undefined) tally.malformed++;
    const iou = predicted === null ? 0 : boxIou(predicted, truth.box);
    tally.boxIou += iou;
    const hit = iou >= 0.5;
    if (hit) tally.boxHits++;
    if (hit) tally.correct++;
    return;
  }
  if (truth.kind === 'vqa_count') {
    tally.countTurns++;
    const hit = parseCount(text) === Number(truth.answer);
    if (hit) tally.countHits++;
    if (hit) tally.correct++;
    return;
  }
  if (exact) tally.correct++;
}

/** One turn by its kind's measure: a box hit (IoU ≥ 0.5, with the IoU), the right count, or exact match. */
export function scoreOneTurn(
  truth: TurnTruth,
  prediction: string,
  imageSize: number,
  codec: BoxCodec = new BoxCodec(),
): { correct: boolean; iou?: number } {
  const tally = emptyTally();
  scoreTurn(tally, truth, prediction, imageSize, codec);
  return { correct: tally.correct > 0, ...(tally.boxTurns > 0 ? { iou: tally.boxIou } : {}) };
}

function toScore(kind: RecordKind | 'overall', t: Tally): KindScore {
  const per = (value: number, over: number): number => (over > 0 ? value / over : 0);
  return {
    kind,
    records: t.records,
    turns: t.turns,
    missing: t.missing,
    exactMatch: per(t.exact, t.turns),
    accuracy: per(t.correct, t.turns),
    tokenF1: per(t.f1, t.turns),
    groundingAcc50: t.boxTurns > 0 ? t.boxHits / t.boxTurns : null,
    groundingMeanIou: t.boxTurns > 0 ? t.boxIou / t.boxTurns : null,
    malformedBoxes: t.malformed,
    countAccuracy: t.countTurns > 0 ? t.countHits / t.countTurns : null,
  };
}

function add(into: Tally, from: Tally): void {
  for (const key of Object.keys(into) as (keyof Tally)[]) into[key] += from[key];
}

/** Per-kind scores of `predictions` on `records` (records without a prediction count as wrong, see `missing`). */
export function scoreWorldPredictions(
  records: readonly WorldRecord[],
  predictions: WorldPredictions,
  options: ScoreOptions = {},
): WorldScores {
  const codec = options.codec ?? new BoxCodec();
  const tallies = new Map<RecordKind, Tally>();
  for (const record of records) {
    const tally = tallies.get(record.kind) ?? emptyTally();
    tallies.set(record.kind, tally);
    tally.records++;
    const predicted = predictions[record.id];
    const turns = typeof predicted === 'string' ? [predicted] : (predicted ?? []);
    record.truth.forEach((truth, turn) => {
      scoreTurn(tally, truth, turns[turn], record.imageSize, codec);
    });
  }
  const overall = emptyTally();
  const rows: KindScore[] = [];
  for (const kind of ALL_RECORD_KINDS) {
    const tally = tallies.get(kind);
    if (tally === undefined) continue;
    add(overall, tally);
    rows.push(toScore(kind, tally));
  }
  return { rows, overall: toScore('overall', overall) };
}

/** A plain-text table of the scores (percentages), for reports and the terminal. */
export function formatWorldScores(scores: WorldScores): string {
  const pct = (value: number | null): string => (value === null ? '-' : `${(100 * value).toFixed(1)}`);
  const header = ['kind', 'records', 'turns', 'accuracy', 'exact', 'F1', 'Acc@0.5', 'malformed', 'count acc'];
  const lines = [...scores.rows, scores.overall].map((row) => [
    row.kind,
    String(row.records),
    String(row.turns),
    pct(row.accuracy),
    pct(row.exactMatch),
    pct(row.tokenF1),
    pct(row.groundingAcc50),
    row.groundingAcc50 === null ? '-' : String(row.malformedBoxes),
    pct(row.countAccuracy),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] as string).length)),
  );
  const format = (cells: string[]): string =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number),
      )
      .join('  ');
  return [format(header), ...lines.map(format)].join('\n');
}
