import { describe, expect, it } from 'vitest';
import type { RecordKind, TurnTruth, WorldRecord } from './instructions.js';
import {
  formatWorldScores,
  normaliseAnswer,
  parseCount,
  scoreOneTurn,
  scoreWorldPredictions,
  tokenF1,
} from './metrics.js';

function record(id: string, kind: RecordKind, truth: TurnTruth[]): WorldRecord {
  const conversations = truth.flatMap((t, i) => [
    { from: 'human' as const, value: i === 0 ? '<image>\nQ?' : 'Q?' },
    { from: 'gpt' as const, value: t.answer },
  ]);
  return { id, image: 'images/x.png', imageSize: 64, kind, conversations, truth };
}

const box16: TurnTruth = { kind: 'grounding', answer: '[0,0,8,8]', box: [0, 0, 16, 16] };

// Hand-made records and predictions; the expected numbers below are worked out by hand in the comments.
const records: WorldRecord[] = [
  record('c1', 'vqa_color', [{ kind: 'vqa_color', answer: 'red' }]),
  record('c2', 'vqa_color', [{ kind: 'vqa_color', answer: 'blue' }]),
  record('n1', 'vqa_count', [{ kind: 'vqa_count', answer: '3' }]),
  record('n2', 'vqa_count', [{ kind: 'vqa_count', answer: '0' }]),
  record('g1', 'grounding', [{ kind: 'grounding', answer: '[4,6,13,15]', box: [8, 12, 26, 30] }]),
  record('g2', 'grounding', [box16]),
  record('g3', 'grounding', [box16]),
  record('g4', 'grounding', [box16]),
  record('g5', 'grounding', [box16]),
  record('v1', 'conversation', [{ kind: 'vqa_exist', answer: 'yes' }, box16]),
  record('v2', 'conversation', [
    { kind: 'vqa_size', answer: 'small' },
    { kind: 'vqa_count', answer: '2' },
  ]),
  record('d1', 'description', [
    { kind: 'description', answer: 'There are 2 objects on a plain background.' },
  ]),
];

const predictions = {
  c1: 'Red.', // exact after normalisation
  c2: 'green', // wrong
  n1: 'There are three.', // not exact, but the count parses to 3
  n2: '2', // wrong
  g1: '[4,6,13,15]', // exact, IoU 1
  g2: '[1,1,9,9]', // [2,2,18,18] px: 14*14 / (256+256-196) = 0.62 → hit
  g3: '[4,4,12,12]', // [8,8,24,24] px: 64 / 448 = 0.14 → miss
  g4: '[1,2,3]', // malformed → miss
  // g5: no prediction → missing
  v1: ['yes', '[0,0,8,8]'], // both right
  v2: ['large'], // wrong, then missing
  d1: 'There are 2 objects on a noisy background.', // 7 of the 8 words match → F1 7/8
};

describe('scoreWorldPredictions', () => {
  const scores = scoreWorldPredictions(records, predictions);
  const row = (kind: string) => scores.rows.find((r) => r.kind === kind);

  it('lists the kinds present, in RECORD_KINDS order', () => {
    expect(scores.rows.map((r) => r.kind)).toEqual([
      'vqa_color',
      'vqa_count',
      'grounding',
      'description',
      'conversation',
    ]);
  });

  it('scores exact match after normalisation', () => {
    expect(row('vqa_color')).toMatchObject({
      records: 2,
      turns: 2,
      exactMatch: 0.5,
      accuracy: 0.5,
      groundingAcc50: null,
    });
  });

  it('scores counts by the first number, digits or words', () => {
    expect(row('vqa_count')).toMatchObject({ turns: 2, exactMatch: 0, accuracy: 0.5, countAccuracy: 0.5 });
  });

  it('scores boxes by Acc@0.5, counting malformed and missing answers as misses', () => {
    expect(row('grounding')).toMatchObject({
      records: 5,
      turns: 5,
      missing: 1,
      exactMatch: 0.2,
      accuracy: 0.4,
      groundingAcc50: 0.4,
      malformedBoxes: 1,
    });
    // Mean IoU over the five box turns, malformed and missing as 0: (1 + 196/316 + 64/448 + 0 + 0) / 5.
    expect(row('grounding')?.groundingMeanIou).toBeCloseTo((1 + 196 / 316 + 64 / 448) / 5, 12);
  });

  it('scores each turn of a conversation by its own kind', () => {
    expect(row('conversation')).toMatchObject({
      records: 2,
      turns: 4,
      missing: 1,
      exactMatch: 0.5,
      accuracy: 0.5,
      groundingAcc50: 1,
      countAccuracy: 0,
    });
  });

  it('gives word-level F1 for descriptions, and an overall row over all turns', () => {
    expect(row('description')?.tokenF1).toBeCloseTo(7 / 8, 12);
    expect(row('description')?.exactMatch).toBe(0);
    expect(scores.overall).toMatchObject({ records: 12, turns: 14, missing: 2 });
    expect(scores.overall.accuracy).toBeCloseTo(6 / 14, 12);
  });

  it('formats a table with one line per kind plus overall', () => {
    const table = formatWorldScores(scores).split('\n');
    expect(table).toHaveLength(1 + 5 + 1);
    expect(table[3]).toMatch(/^grounding\s+5\s+5\s+40\.0\s+20\.0\s+\S+\s+40\.0\s+1\s+-$/);
  });
});

describe('answer helpers', () => {
  it('normalises case, spaces and trailing punctuation only', () => {
    expect(normaliseAnswer('  Red. ')).toBe('red');
    expect(normaliseAnswer('Yes!?')).toBe('yes');
    expect(normaliseAnswer('[1,2,3,4].')).toBe('[1,2,3,4]');
    expect(normaliseAnswer('red  circle')).toBe('red circle');
  });

  it('parses counts and computes F1', () => {
    expect(parseCount('Two.')).toBe(2);
    expect(parseCount('12 objects')).toBe(12);
    expect(parseCount('none')).toBeNull();
    expect(tokenF1('red circle', 'red circle')).toBe(1);
    expect(tokenF1('red', 'red circle')).toBeCloseTo(2 / 3, 12);
    expect(tokenF1('', 'red')).toBe(0);
  });
});

describe('scoreOneTurn', () => {
  it('scores a turn by its kind: box IoU ≥ 0.5, the count, else exact match', () => {
    // [0,0,8,8] on the 32-cell grid of a 64 px image is [0,0,16,16]: IoU 1; [1,1,8,8] → [2,2,16,16]: 196/256
    expect(scoreOneTurn(box16, '[0,0,8,8]', 64)).toEqual({ correct: true, iou: 1 });
    expect(scoreOneTurn(box16, '[1,1,8,8]', 64)).toEqual({ correct: true, iou: 196 / 256 });
    expect(scoreOneTurn(box16, '[6,6,8,8]', 64).correct).toBe(false);
    expect(scoreOneTurn(box16, 'somewhere', 64)).toEqual({ correct: false, iou: 0 });
    expect(scoreOneTurn({ kind: 'vqa_count', answer: '3' }, 'There are 3.', 64)).toEqual({ correct: true });
    expect(scoreOneTurn({ kind: 'vqa_color', answer: 'red' }, 'Red.', 64)).toEqual({ correct: true });
    expect(scoreOneTurn({ kind: 'vqa_color', answer: 'red' }, 'blue', 64)).toEqual({ correct: false });
  });
});
