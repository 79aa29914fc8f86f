import { describe, expect, it } from 'vitest';
import { greedyToken, sampleToken, samplingRandom } from './sampling.js';

const row = (...values: number[]) => Float32Array.from(values);

describe('greedyToken', () => {
  it('returns the argmax, lowest id on ties', () => {
    expect(greedyToken(row(1, 5, 5, 2))).toBe(1);
    expect(greedyToken(row(-3, -1, -2))).toBe(1);
    expect(greedyToken(row(-Infinity, -Infinity, 0))).toBe(2);
  });
  it('rejects NaN logits', () => {
    expect(() => greedyToken(row(0, NaN))).toThrow(/logit 1 is NaN/);
  });
});

describe('samplingRandom', () => {
  it('is deterministic by seed, in [0, 1), and roughly uniform', () => {
    const a = samplingRandom(42);
    const b = samplingRandom(42);
    const c = samplingRandom(43);
    const fromA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(fromA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(fromA);
    const draws = Array.from({ length: 20000 }, samplingRandom(7));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const mean = draws.reduce((sum, x) => sum + x, 0) / draws.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01); // std of the mean ≈ 0.002
  });
});

describe('sampleToken', () => {
  it('inverts the cumulative distribution', () => {
    const logits = row(Math.log(0.1), Math.log(0.2), Math.log(0.7));
    expect(sampleToken(logits, () => 0.05)).toBe(0);
    expect(sampleToken(logits, () => 0.15)).toBe(1);
    expect(sampleToken(logits, () => 0.29)).toBe(1);
    expect(sampleToken(logits, () => 0.31)).toBe(2);
    expect(sampleToken(logits, () => 0.999999)).toBe(2);
  });

  it('at an exact cumulative boundary the draw belongs to the next token (cum[i-1] ≤ u < cum[i])', () => {
    const logits = row(0, 0, 0, 0); // probabilities exactly 0.25: cumulative 0.25, 0.5, 0.75, 1
    expect(sampleToken(logits, () => 0)).toBe(0);
    expect(sampleToken(logits, () => 0.25)).toBe(1);
    expect(sampleToken(logits, () => 0.5)).toBe(2);
    expect(sampleToken(logits, () => 0.75)).toBe(3);
    expect(sampleToken(logits, () => 0.25 - 2 ** -40)).toBe(0);
    // A zero-probability token never takes a draw, even u = 0 at its (empty) interval.
    expect(sampleToken(row(-Infinity, 0, 0), () => 0)).toBe(1);
    expect(sampleToken(row(0, -Infinity, 0), () => 0.5)).toBe(2);
  });

  it('draws with frequencies close to softmax(logits) and never draws -Infinity tokens', () => {
    const logits = row(Math.log(0.1), -Infinity, Math.log(0.2), Math.log(0.7), -Infinity);
    const random = samplingRandom(1234);
    const counts = [0, 0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, random)]++;
    expect(counts[1]).toBe(0);
    expect(counts[4]).toBe(0);
    // binomial std ≤ 0.0033 at n = 20000; 0.015 is > 4 std
    expect(Math.abs(counts[0] / n - 0.1)).toBeLessThan(0.015);
    expect(Math.abs(counts[2] / n - 0.2)).toBeLessThan(0.015);
    expect(Math.abs(counts[3] / n - 0.7)).toBeLessThan(0.015);
  });

  it('returns the same tokens for the same seed', () => {
    const logits = row(0, 0.5, 1, 1.5, 2);
    const run = (seed: number) => {
      const random = samplingRandom(seed);
      return Array.from({ length: 20 }, () => sampleToken(logits, random));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });
});
