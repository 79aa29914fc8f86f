import { describe, expect, it } from 'vitest';
import { boxIou, maskToBox } from './box.js';

describe('boxIou', () => {
  it('is 1 for equal boxes, 1/3 for a half shift, 0 for touching or empty boxes', () => {
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(boxIou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 12);
    expect(boxIou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(boxIou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });

  it('is the area ratio for a box inside another', () => {
    expect(boxIou([0, 0, 4, 4], [1, 1, 3, 3])).toBe(0.25);
  });
});

describe('maskToBox', () => {
  it('ends one past the last set pixel, null for an empty mask, and names the size on a mismatch', () => {
    expect(maskToBox(Uint8Array.from([0, 0, 0, 0, 1, 1, 0, 0, 0]), 3, 3)).toEqual([1, 1, 3, 2]);
    expect(maskToBox(new Uint8Array(4), 2, 2)).toBeNull();
    expect(() => maskToBox(new Uint8Array(3), 2, 2)).toThrow(/width·height = 4/);
  });
});
