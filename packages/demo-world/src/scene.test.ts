import { boxIou } from '@vistune/tasks-grounding';
import { describe, expect, it } from 'vitest';
import { createRng } from './random.js';
import { renderScene } from './render.js';
import { generateLayout, MIN_GAP_PX } from './scene.js';
import { shapeGeometry } from './shapes.js';
import { findPixelObjects } from './test-utils.js';

const layouts = Array.from({ length: 150 }, (_, i) =>
  generateLayout(createRng('scene-test', i), { imageSize: 64 }),
);

describe('createRng', () => {
  it('repeats for the same seed and differs for another', () => {
    const draw = (seed: number): number[] => {
      const rng = createRng(seed, 'x');
      return Array.from({ length: 8 }, () => rng.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('int covers both ends, shuffle is a permutation', () => {
    const rng = createRng('ints');
    const seen = new Set(Array.from({ length: 400 }, () => rng.int(1, 5)));
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(rng.shuffle([1, 2, 3, 4, 5, 6]).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('generateLayout', () => {
  it('is deterministic by seed', () => {
    expect(generateLayout(createRng('a', 1), { imageSize: 64 })).toEqual(
      generateLayout(createRng('a', 1), { imageSize: 64 }),
    );
    expect(generateLayout(createRng('a', 1), { imageSize: 64 })).not.toEqual(
      generateLayout(createRng('a', 2), { imageSize: 64 }),
    );
  });

  it('places 1-5 objects inside the image, boxes at least MIN_GAP_PX apart, no repeated (colour, shape)', () => {
    const counts = new Set<number>();
    for (const layout of layouts) {
      counts.add(layout.objects.length);
      const names = layout.objects.map((o) => `${o.colour} ${o.shape}`);
      expect(new Set(names).size).toBe(names.length);
      for (const [i, a] of layout.objects.entries()) {
        expect(a.box[0]).toBeGreaterThanOrEqual(0);
        expect(a.box[1]).toBeGreaterThanOrEqual(0);
        expect(a.box[2]).toBeLessThanOrEqual(64);
        expect(a.box[3]).toBeLessThanOrEqual(64);
        for (const b of layout.objects.slice(i + 1)) {
          const gapX = Math.max(b.box[0] - a.box[2], a.box[0] - b.box[2]);
          const gapY = Math.max(b.box[1] - a.box[3], a.box[1] - b.box[3]);
          expect(Math.max(gapX, gapY)).toBeGreaterThanOrEqual(MIN_GAP_PX);
        }
      }
    }
    expect([...counts].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('stores the box of the drawn geometry, centred on the object centre', () => {
    for (const layout of layouts.slice(0, 30)) {
      for (const object of layout.objects) {
        const geometry = shapeGeometry(object.shape, object.centre[0], object.centre[1], object.radius);
        // Stored boxes are rounded to 2 decimals.
        geometry.box.forEach((v, k) => {
          expect(Math.abs((object.box[k] as number) - v)).toBeLessThanOrEqual(0.0051);
        });
        expect((object.box[0] + object.box[2]) / 2).toBeCloseTo(object.centre[0], 1);
        expect((object.box[1] + object.box[3]) / 2).toBeCloseTo(object.centre[1], 1);
      }
    }
  });

  it('large objects are visibly larger than small ones', () => {
    const widths = { small: [] as number[], large: [] as number[] };
    for (const layout of layouts) for (const o of layout.objects) widths[o.size].push(o.box[2] - o.box[0]);
    expect(Math.max(...widths.small)).toBeLessThan(Math.min(...widths.large));
  });

  it('rejects an image too small to hold anything', () => {
    expect(() => generateLayout(createRng(1), { imageSize: 8 })).toThrow(
      /imageSize must be an integer >= 16/,
    );
  });
});

describe('generateLayout on a grid', () => {
  const grid = 4;
  const cell = 64 / grid;
  const gridLayouts = Array.from({ length: 100 }, (_, i) =>
    generateLayout(createRng('grid-test', i), { imageSize: 64, grid }),
  );

  it('puts every object, box and all, inside its own cell', () => {
    const counts = new Set<number>();
    for (const layout of gridLayouts) {
      counts.add(layout.objects.length);
      const cells = layout.objects.map((o) => {
        const column = Math.floor(o.centre[0] / cell);
        const row = Math.floor(o.centre[1] / cell);
        expect(o.box[0]).toBeGreaterThanOrEqual(column * cell);
        expect(o.box[2]).toBeLessThanOrEqual((column + 1) * cell);
        expect(o.box[1]).toBeGreaterThanOrEqual(row * cell);
        expect(o.box[3]).toBeLessThanOrEqual((row + 1) * cell);
        // Near the cell's centre (jitter ≤ 6 % of the cell).
        expect(Math.abs(o.centre[0] - (column + 0.5) * cell)).toBeLessThanOrEqual(0.06 * cell + 1e-9);
        return row * grid + column;
      });
      expect(new Set(cells).size).toBe(cells.length);
    }
    expect([...counts].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps small and large apart within a cell', () => {
    const radius = (size: string) =>
      gridLayouts.flatMap((l) => l.objects.filter((o) => o.size === size).map((o) => o.radius / cell));
    expect(Math.max(...radius('small'))).toBeLessThan(Math.min(...radius('large')));
  });

  it('rejects a grid that cannot hold the objects or has cells under 8 px', () => {
    expect(() => generateLayout(createRng('g'), { imageSize: 64, grid: 2, maxObjects: 5 })).toThrow(
      /grid² >= maxObjects/,
    );
    expect(() => generateLayout(createRng('g'), { imageSize: 64, grid: 16 })).toThrow(/at least 8 px/);
  });
});

describe('renderScene', () => {
  it('draws each object where its box says, in its colour, on a dark background', () => {
    for (const layout of layouts.slice(0, 60)) {
      const image = renderScene(layout);
      const found = findPixelObjects(image);
      expect(found.length).toBe(layout.objects.length);
      for (const object of layout.objects) {
        // The drawn region matching this object: best IoU with its box.
        const match = found.reduce((best, f) =>
          boxIou(f.box, object.box) > boxIou(best.box, object.box) ? f : best,
        );
        expect(match.colour).toBe(object.colour);
        // Pixel extents are the box rounded outwards (antialiased edges may fall below the ink threshold).
        expect(match.box[0]).toBeGreaterThanOrEqual(Math.floor(object.box[0]));
        expect(match.box[2]).toBeLessThanOrEqual(Math.ceil(object.box[2]));
        expect(boxIou(match.box, object.box), `${object.size} ${object.shape}`).toBeGreaterThan(0.6);
      }
    }
  });

  it('is a pure function of the layout', () => {
    const layout = layouts[3];
    if (layout === undefined) throw new Error('no layout');
    expect(renderScene(layout).data).toEqual(renderScene(structuredClone(layout)).data);
  });
});
