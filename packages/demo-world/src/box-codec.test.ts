import { describe, expect, it } from 'vitest';
import { BoxCodec, boxIou } from './box-codec.js';
import { createRng } from './random.js';
import type { PixelBox } from './shapes.js';

describe('BoxCodec (grid)', () => {
  const codec = new BoxCodec({ format: 'grid', bins: 32 });

  it('writes integers on the grid', () => {
    expect(codec.encode([8, 12, 26, 30], 64)).toBe('[4,6,13,15]');
    expect(codec.encode([0, 0, 64, 64], 64)).toBe('[0,0,32,32]');
    // Out-of-image coordinates clamp to the border.
    expect(codec.encode([-3, 5, 70, 40], 64)).toBe('[0,3,32,20]');
  });

  it('round-trips within half a cell, and keeps IoU >= 0.6 down to the smallest (9.2 px) objects', () => {
    const rng = createRng('codec');
    for (let i = 0; i < 500; i++) {
      const side = rng.float(9.2, 30);
      const x = rng.float(0, 64 - side);
      const y = rng.float(0, 64 - side);
      const box: PixelBox = [x, y, x + side, y + side];
      const decoded = codec.decode(codec.encode(box, 64), 64);
      expect(decoded).not.toBeNull();
      decoded?.forEach((v, k) => {
        expect(Math.abs(v - (box[k] as number))).toBeLessThanOrEqual(1 + 1e-9);
      });
      expect(boxIou(decoded as PixelBox, box)).toBeGreaterThanOrEqual(0.6);
    }
  });

  it('finds the box inside surrounding text and tolerates spaces', () => {
    expect(codec.decode('It is at [4, 6 ,13,15].', 64)).toEqual([8, 12, 26, 30]);
    expect(codec.decodeNormalised('[0,0,32,16]')).toEqual([0, 0, 1, 0.5]);
  });

  it.each([
    ['empty', ''],
    ['no box', 'the red circle'],
    ['three numbers', '[1,2,3]'],
    ['five numbers', '[1,2,3,4,5]'],
    ['letters', '[a,b,c,d]'],
    ['beyond the grid', '[1,2,33,4]'],
    ['inverted x', '[9,2,3,4]'],
    ['inverted y', '[1,9,3,4]'],
    ['unclosed', '[1,2,3,4'],
    ['negative', '[-1,2,3,4]'],
    ['decimals in grid mode', '[0.1,0.2,0.3,0.4]'],
  ])('returns null for a malformed box: %s', (_name, text) => {
    expect(codec.decode(text, 64)).toBeNull();
  });
});

describe('BoxCodec (decimal, Shikra-style)', () => {
  const codec = new BoxCodec({ format: 'decimal', decimals: 3 });

  it('writes 3 decimals in [0,1] and reads them back', () => {
    expect(codec.encode([8, 12, 26, 30], 64)).toBe('[0.125,0.188,0.406,0.469]');
    const decoded = codec.decode('[0.125,0.188,0.406,0.469]', 64);
    expect(decoded?.map((v) => Math.round(v * 1000) / 1000)).toEqual([8, 12.032, 25.984, 30.016]);
  });

  it('rejects values above 1 and inverted boxes', () => {
    expect(codec.decode('[0.1,0.2,1.3,0.4]', 64)).toBeNull();
    expect(codec.decode('[0.5,0.2,0.3,0.4]', 64)).toBeNull();
  });

  it('validates its options', () => {
    expect(() => new BoxCodec({ format: 'decimal', decimals: 0 })).toThrow(/decimals/);
    expect(() => new BoxCodec({ format: 'grid', bins: 2.5 })).toThrow(/bins/);
  });
});

describe('boxIou', () => {
  it('matches hand-computed values', () => {
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    // Overlap 5x10 = 50, union 100 + 100 - 50 = 150.
    expect(boxIou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 12);
    expect(boxIou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(boxIou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
    // Contained: 4 / 16.
    expect(boxIou([0, 0, 4, 4], [1, 1, 3, 3])).toBe(0.25);
  });
});
