// Masks are checked against the rendered pixels and shape areas, and the RLE against hand-written runs.

import { maskToRle, rleToMask } from '@vistune/tasks-grounding';
import { describe, expect, it } from 'vitest';
import { instanceMap, renderObjectMasks } from './masks.js';
import { createRng } from './random.js';
import { renderScene } from './render.js';
import { generateLayout } from './scene.js';

const layouts = Array.from({ length: 40 }, (_, i) =>
  generateLayout(createRng('masks-test', i), { imageSize: 64 }),
);

describe('renderObjectMasks', () => {
  it('marks exactly the pixels drawn at least half-way from the background to the object colour', () => {
    const wrong: string[] = [];
    for (const layout of layouts) {
      const image = renderScene(layout);
      // Objects never touch, so what lies under an object is the bare background.
      const background = renderScene({ ...layout, objects: [] });
      renderObjectMasks(layout).forEach((mask, k) => {
        const object = layout.objects[k];
        if (!object) throw new Error('mask without object');
        const [x1, y1, x2, y2] = object.box;
        for (let i = 0; i < mask.data.length; i++) {
          const x = i % 64;
          const y = Math.floor(i / 64);
          const inBox = x >= Math.floor(x1) && x < Math.ceil(x2) && y >= Math.floor(y1) && y < Math.ceil(y2);
          if (!inBox) {
            if (mask.data[i]) wrong.push(`${x},${y} outside the box`);
            continue;
          }
          // Coverage read back from the pixel on the channel where object and background differ most.
          const spans = [0, 1, 2].map(
            (c) => (object.rgb[c] as number) - (background.data[i * 3 + c] as number),
          );
          const c = [0, 1, 2].reduce((best, j) =>
            Math.abs(spans[j] as number) > Math.abs(spans[best] as number) ? j : best,
          );
          const coverage =
            ((image.data[i * 3 + c] as number) - (background.data[i * 3 + c] as number)) /
            (spans[c] as number);
          // Coverage comes in sixteenths (7/16 is out, 8/16 in); rounding to bytes moves it by < 1/100.
          if (mask.data[i] ? coverage <= 0.49 : coverage >= 0.45)
            wrong.push(`${x},${y} coverage ${coverage}`);
        }
      });
    }
    expect(wrong).toEqual([]);
  });

  it('gives circles and squares their geometric area to within the boundary pixels', () => {
    let checked = 0;
    for (const layout of layouts) {
      renderObjectMasks(layout).forEach((mask, k) => {
        const object = layout.objects[k];
        if (!object || (object.shape !== 'circle' && object.shape !== 'square')) return;
        const r = object.radius;
        const area = object.shape === 'circle' ? Math.PI * r * r : (2 * 0.85 * r) ** 2;
        const perimeter = object.shape === 'circle' ? 2 * Math.PI * r : 8 * 0.85 * r;
        const pixels = mask.data.reduce((s, v) => s + v, 0);
        expect(Math.abs(pixels - area)).toBeLessThan(0.5 * perimeter);
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('instanceMap labels every mask pixel with its object number and nothing else', () => {
    const layout = layouts[3];
    if (!layout) throw new Error('no layout');
    const map = instanceMap(layout);
    const masks = renderObjectMasks(layout);
    for (let i = 0; i < map.length; i++) {
      const owners = masks.flatMap((m, k) => (m.data[i] ? [k + 1] : []));
      expect(owners.length).toBeLessThanOrEqual(1);
      expect(map[i]).toBe(owners[0] ?? 0);
    }
  });
});

describe('object masks as COCO RLE', () => {
  it('round-trip through tasks-grounding maskToRle / rleToMask', () => {
    for (const layout of layouts.slice(0, 10)) {
      for (const mask of renderObjectMasks(layout)) {
        const rle = maskToRle(mask.data, mask.width, mask.height);
        expect(rle.size).toEqual([mask.height, mask.width]);
        expect(rleToMask(rle)).toEqual(mask.data);
      }
    }
  });
});
