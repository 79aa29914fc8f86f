import { describe, expect, it } from 'vitest';
import {
  applyRepetitionPenalty,
  applyTemperature,
  buildLogitsProcessors,
  minNewTokensProcessor,
  softmaxProbabilities,
  suppressTokens,
  topKFilter,
  topPFilter,
} from './logits.js';

const row = (...values: number[]) => Float32Array.from(values);
const NEG = -Infinity;

describe('temperature', () => {
  it('divides every logit', () => {
    expect(Array.from(applyTemperature(row(1, 2, -3), 2))).toEqual([0.5, 1, -1.5]);
  });
  it('rejects 0 and negatives', () => {
    expect(() => applyTemperature(row(1), 0)).toThrow(/temperature must be > 0/);
    expect(() => applyTemperature(row(1), -1)).toThrow(/temperature/);
  });
});

describe('topKFilter', () => {
  it('keeps the k largest and ties with the k-th value', () => {
    expect(Array.from(topKFilter(row(1, 4, 2, 3), 2))).toEqual([NEG, 4, NEG, 3]);
    expect(Array.from(topKFilter(row(1, 3, 2, 3), 1))).toEqual([NEG, 3, NEG, 3]);
    expect(Array.from(topKFilter(row(1, 3, 2, 3), 2))).toEqual([NEG, 3, NEG, 3]);
  });
  it('is a no-op for k = 0 and k >= vocab, and does not modify its input', () => {
    const logits = row(1, 3, 2);
    expect(Array.from(topKFilter(logits, 0))).toEqual([1, 3, 2]);
    expect(Array.from(topKFilter(logits, 5))).toEqual([1, 3, 2]);
    topKFilter(logits, 1);
    expect(Array.from(logits)).toEqual([1, 3, 2]);
  });
});

describe('topPFilter', () => {
  // probabilities 0.5, 0.3, 0.15, 0.05 (ids 0..3), given as logits ln(p)
  const logits = row(Math.log(0.05), Math.log(0.5), Math.log(0.15), Math.log(0.3));
  const kept = (filtered: Float32Array) => Array.from(filtered.keys()).filter((i) => filtered[i] !== NEG);

  it('keeps the smallest top set whose probability reaches p', () => {
    expect(kept(topPFilter(logits, 0.45))).toEqual([1]); // 0.5 >= 0.45
    expect(kept(topPFilter(logits, 0.7))).toEqual([1, 3]); // 0.5 + 0.3 >= 0.7
    expect(kept(topPFilter(logits, 0.9))).toEqual([1, 2, 3]); // 0.95 >= 0.9
    expect(kept(topPFilter(logits, 1))).toEqual([0, 1, 2, 3]);
  });
  it('keeps at least one token (or minTokensToKeep)', () => {
    expect(kept(topPFilter(logits, 0))).toEqual([1]);
    expect(kept(topPFilter(logits, 0.01, 3))).toEqual([1, 2, 3]);
  });
  it('at an exact boundary drops the low tail whose cumulative probability equals 1 − p (HF: <=)', () => {
    // Four equal logits: 0.25 each; the two lowest sum to exactly 0.5 = 1 − p, so exactly 2 are kept.
    const equal = row(1, 1, 1, 1);
    expect(kept(topPFilter(equal, 0.5))).toHaveLength(2);
    expect(kept(topPFilter(equal, 0.75))).toHaveLength(3); // 0.25 ≤ 0.25 dropped, 0.5 > 0.25 kept
    expect(kept(topPFilter(equal, 0.5 + 1e-9))).toHaveLength(3); // just past the boundary keeps one more
    // Probabilities 0.5, 0.25, 0.25: p = 0.75 drops one 0.25 (cumulative 0.25 ≤ 0.25) and keeps the other.
    expect(kept(topPFilter(row(Math.log(0.5), Math.log(0.25), Math.log(0.25)), 0.75))).toHaveLength(2);
  });
  it('leaves kept logits unchanged', () => {
    const filtered = topPFilter(logits, 0.7);
    expect(filtered[1]).toBe(logits[1]);
    expect(filtered[3]).toBe(logits[3]);
  });
});

describe('repetition penalty', () => {
  it('divides positive and multiplies negative logits of seen tokens, once per distinct token', () => {
    const out = applyRepetitionPenalty(row(2, -2, 1, 0.5), [0, 1, 1, 1], 2);
    expect(Array.from(out)).toEqual([1, -4, 1, 0.5]);
  });
  it('ignores ids outside the vocabulary (image placeholders)', () => {
    expect(Array.from(applyRepetitionPenalty(row(2, 2), [-200, 7], 2))).toEqual([2, 2]);
  });
});

describe('min new tokens', () => {
  it('suppresses EOS until enough tokens follow the prompt', () => {
    const processor = minNewTokensProcessor(3, 2, [0, 2]);
    const logits = row(5, 1, 5);
    expect(Array.from(processor(logits, [9, 9, 9]))).toEqual([NEG, 1, NEG]);
    expect(Array.from(processor(logits, [9, 9, 9, 4]))).toEqual([NEG, 1, NEG]);
    expect(Array.from(processor(logits, [9, 9, 9, 4, 4]))).toEqual([5, 1, 5]);
    expect(Array.from(suppressTokens(logits, [1]))).toEqual([5, NEG, 5]);
  });
});

describe('softmaxProbabilities', () => {
  it('matches exp / sum and gives -Infinity zero mass', () => {
    const probs = softmaxProbabilities(row(0, Math.log(3), NEG));
    expect(probs[0]).toBeCloseTo(0.25, 7);
    expect(probs[1]).toBeCloseTo(0.75, 7);
    expect(probs[2]).toBe(0);
  });
  it('refuses a row with no possible token', () => {
    expect(() => softmaxProbabilities(row(NEG, NEG))).toThrow(/every logit is -Infinity/);
  });
});

describe('buildLogitsProcessors', () => {
  it('applies penalty, then temperature, then top-k in HF order', () => {
    // penalty 2 on id 0: 4 → 2; temperature 0.5: [4, 6, 2, 1] ; top-k 2 keeps ids 0, 1
    const list = buildLogitsProcessors({ repetitionPenalty: 2, temperature: 0.5, topK: 2 });
    expect(list.processors).toHaveLength(3);
    expect(Array.from(list.apply(row(4, 3, 1, 0.5), [0]))).toEqual([4, 6, NEG, NEG]);
  });
  it('adds nothing for neutral values and requires promptLength for minNewTokens', () => {
    expect(
      buildLogitsProcessors({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 }).processors,
    ).toHaveLength(0);
    expect(() => buildLogitsProcessors({ minNewTokens: 2 })).toThrow(/promptLength and eosTokenIds/);
  });
});
