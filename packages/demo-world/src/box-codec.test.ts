import { boxIou } from '@vistune/tasks-grounding';
import { describe, expect, it } from 'vitest';
import { BoxCodec } from './box-codec.js';
import { createRng } from './random.js';
import type { PixelBox } from './shapes.js';

describe('BoxCodec (grid, the default)', () => {
  const codec = new BoxCodec();

  it('writes integers on the 32-bin grid of the image and reads them back in pixels', () => {
    expect(codec.encode([8, 12, 26, 30], 64)).toBe('[4,6,13,15]');
    expect(codec.encode([-3, 5, 70, 40], 64)).toBe('[0,3,32,20]');
    expect(codec.decode('It is at [4, 6 ,13,15].', 64)).toEqual([8, 12, 26, 30]);
    expect(codec.decode('[1,2,33,4]', 64)).toBeNull();
  });

  it('keeps IoU >= 0.6 down to the smallest (9.2 px) objects of a 64 px world', () => {
    const rng = createRng('codec');
    for (let i = 0; i < 300; i++) {
      const side = rng.float(9.2, 30);
      const x = rng.float(0, 64 - side);
      const y = rng.float(0, 64 - side);
      const box: PixelBox = [x, y, x + side, y + side];
      expect(boxIou(codec.decode(codec.encode(box, 64), 64) ?? [0, 0, 0, 0], box)).toBeGreaterThanOrEqual(
        0.6,
      );
    }
  });
});

describe('BoxCodec (decimal, Shikra-style)', () => {
  const codec = new BoxCodec({ format: 'decimal', decimals: 3 });

  it('writes 3 decimals in [0,1] and reads them back', () => {
    expect(codec.encode([8, 12, 26, 30], 64)).toBe('[0.125,0.188,0.406,0.469]');
    const decoded = codec.decode('[0.125,0.188,0.406,0.469]', 64);
    expect(decoded?.map((v) => Math.round(v * 1000) / 1000)).toEqual([8, 12.032, 25.984, 30.016]);
    expect(codec.decode('[0.5,0.2,0.3,0.4]', 64)).toBeNull();
  });

  it('validates its options', () => {
    expect(() => new BoxCodec({ format: 'decimal', decimals: 0 })).toThrow(/decimals/);
    expect(() => new BoxCodec({ format: 'grid', bins: 2.5 })).toThrow(/bins/);
  });
});
