import { describe, expect, it } from 'vitest';
import {
  decodeRleString,
  encodeRleString,
  maskToRle,
  polygonsToMask,
  rleToMask,
  segmentationToMask,
} from './masks.js';

/** Rows of '#' / '.' → row-major mask. */
const grid = (rows: string[]) => Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));
const show = (mask: Uint8Array, width: number) =>
  Array.from({ length: mask.length / width }, (_, y) =>
    Array.from(mask.slice(y * width, (y + 1) * width), (v) => (v ? '#' : '.')).join(''),
  );

describe('polygon rasterisation (pixel centres, even-odd)', () => {
  it('fills a rectangle by pixel centres', () => {
    // x ∈ [1, 4), y ∈ [1, 3): centres 1.5..3.5 and 1.5..2.5.
    expect(show(polygonsToMask([[1, 1, 4, 1, 4, 3, 1, 3]], 6, 4), 6)).toEqual([
      '......',
      '.###..',
      '.###..',
      '......',
    ]);
  });

  it('fills a triangle: centre inside x + y < 6 ⇔ x + y ≤ 4 (15 pixels)', () => {
    const mask = polygonsToMask([[0, 0, 6, 0, 0, 6]], 6, 6);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) expect(mask[y * 6 + x]).toBe(x + y <= 4 ? 1 : 0);
  });

  it('even-odd inside one ring (a keyhole leaves a hole), union across the polygons of an object', () => {
    const keyhole = [0, 0, 6, 0, 6, 6, 0, 6, 0, 0, 2, 2, 2, 4, 4, 4, 4, 2, 2, 2];
    expect(show(polygonsToMask([keyhole], 6, 6), 6)).toEqual([
      '######',
      '######',
      '##..##',
      '##..##',
      '######',
      '######',
    ]);
    const two = polygonsToMask(
      [
        [0, 0, 3, 0, 3, 2, 0, 2],
        [2, 1, 5, 1, 5, 3, 2, 3],
      ],
      5,
      3,
    );
    expect(show(two, 5)).toEqual(['###..', '#####', '..###']);
    expect(() => polygonsToMask([[0, 0, 1, 1]], 2, 2)).toThrow(/≥ 3 points/);
  });
});

describe('COCO RLE', () => {
  // Column-major: col0 0,0,0 · col1 1,1,0 · col2 1,0,1 · col3 0,0,1 → runs 3,2,1,1,1,1,2,1.
  const mask = grid(['.##.', '.#..', '..##']);
  const counts = [3, 2, 1, 1, 1, 1, 2, 1];

  it('decodes and encodes uncompressed counts (column-major, background first)', () => {
    expect(Array.from(rleToMask({ size: [3, 4], counts }))).toEqual(Array.from(mask));
    expect(maskToRle(mask, 4, 3)).toEqual({ size: [3, 4], counts });
    // A mask starting with foreground has a zero first run.
    expect(maskToRle(grid(['#.', '..']), 2, 2).counts).toEqual([0, 1, 3]);
    expect(() => rleToMask({ size: [3, 4], counts: [3, 2] })).toThrow(/cover 5 pixels/);
  });

  it('compressed strings: hand-encoded 5-bit groups with deltas from run i − 2', () => {
    // 3, 2, 5 → '3' '2' '5'; run 3: 1 − 2 = −1 → 31 (sign bit set, no continuation) → 'O'; run 4: 4 − 5 = −1 → 'O';
    // run 5: 100 − 1 = 99 → low group 3 | 0x20 = 35 → 'S', then 3 → '3'.
    expect(encodeRleString([3, 2, 5, 1, 4, 100])).toBe('325OOS3');
    expect(decodeRleString('325OOS3')).toEqual([3, 2, 5, 1, 4, 100]);
    // 50 → 18 | 0x20 = 50 → 'b', then 1 → '1'; run 3: 7 − 2 = 5 → '5'; run 4: 10 − 50 = −40 → 24 | 0x20 → 'h',
    // then −2 & 31 = 30 → 'N'.
    expect(encodeRleString([3, 2, 50, 7, 10])).toBe('32b15hN');
    expect(decodeRleString('32b15hN')).toEqual([3, 2, 50, 7, 10]);
    expect(Array.from(segmentationToMask({ size: [3, 4], counts: encodeRleString(counts) }, 4, 3))).toEqual(
      Array.from(mask),
    );
    expect(() => decodeRleString('b')).toThrow(/truncated/);
    expect(() => segmentationToMask({ size: [4, 3], counts }, 4, 3)).toThrow(/4×3 \(h×w\)/);
  });

  it('polygon → RLE string → mask round trip', () => {
    const poly = polygonsToMask([[0.5, 0.2, 9.1, 1.7, 7.4, 8.8, 1.2, 6.3]], 10, 9);
    const rle = maskToRle(poly, 10, 9);
    const back = rleToMask({ size: rle.size, counts: encodeRleString(rle.counts as number[]) });
    expect(Array.from(back)).toEqual(Array.from(poly));
  });
});
