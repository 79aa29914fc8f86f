import { describe, expect, it } from 'vitest';
import { maskSummary } from './summary.js';

describe('maskSummary', () => {
  it('size, area, tight box and column-major COCO counts of a 4×3 mask', () => {
    // Row-major 4 wide × 3 high; set pixels (1,0), (1,1), (2,1).
    const mask = Uint8Array.from([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    // Column-major order: col0 = 0,0,0  col1 = 1,1,0  col2 = 0,1,0  col3 = 0,0,0.
    expect(maskSummary(mask, 4, 3)).toEqual({
      size: [3, 4],
      area: 3,
      bbox: [1, 0, 3, 2],
      counts: [3, 2, 2, 1, 4],
    });
    expect(maskSummary(new Uint8Array(6), 3, 2)).toEqual({ size: [2, 3], area: 0, bbox: null, counts: [6] });
  });
});
