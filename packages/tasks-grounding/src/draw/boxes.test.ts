import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOX_COLOURS, drawBoxes, glyphRows, labelSize } from './boxes.js';

let dir: string;
let source: string;
const GREY = [50, 50, 50];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'draw-boxes-'));
  source = join(dir, 'grey.png');
  await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 50, g: 50, b: 50 } } })
    .png()
    .toFile(source);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function pixels(
  path: string,
): Promise<{ at: (x: number, y: number) => number[]; width: number; height: number }> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return {
    at: (x, y) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)],
    width: info.width,
    height: info.height,
  };
}

describe('drawBoxes', () => {
  it('upscales, outlines the box and writes the label on a tab above it', async () => {
    const out = join(dir, 'boxed.png');
    const result = await drawBoxes(source, [{ box: [8, 8, 24, 24], label: 'AB', color: 'red' }], out, {
      scale: 4,
    });
    expect(result).toEqual({ width: 128, height: 128, scale: 4 });
    const image = await pixels(out);
    const red = [...BOX_COLOURS.red];
    // Outline 2 px thick at x = 32..33 (box x1 = 8 px * 4).
    expect(image.at(32, 64)).toEqual(red);
    expect(image.at(33, 64)).toEqual(red);
    expect(image.at(34, 64)).toEqual(GREY);
    expect(image.at(95, 64)).toEqual(red);
    expect(image.at(64, 64)).toEqual(GREY);
    // Tab: 5 rows * 2 px + 2 * 2 px padding = 14 px above y = 32; the top row of 'A' is '.#.', white ink on red.
    expect(image.at(34, 20)).toEqual(red);
    expect(image.at(36, 20)).toEqual([255, 255, 255]);
    expect(image.at(32, 17)).toEqual(GREY);
    expect(image.at(10, 10)).toEqual(GREY);
  });

  it('puts the label inside a box touching the top edge, with dark ink on light colours', async () => {
    const out = join(dir, 'top.png');
    await drawBoxes(source, [{ box: [0, 0, 16, 16], label: 'I', color: '#ffffff' }], out, { scale: 2 });
    const image = await pixels(out);
    // scale 2: thickness 1, font pixel 1, tab from y = 1; 'I' top row '###' starts at x = 1.
    expect(image.at(0, 0)).toEqual([255, 255, 255]);
    expect(image.at(1, 2)).toEqual([0, 0, 0]);
    expect([image.width, image.height]).toEqual([64, 64]);
  });

  it('defaults to a scale that makes the image at least 256 px wide, and checks colours', async () => {
    const result = await drawBoxes(source, [], join(dir, 'plain.png'));
    expect(result.scale).toBe(8);
    await expect(
      drawBoxes(source, [{ box: [0, 0, 1, 1], label: '', color: 'pink' as 'red' }], join(dir, 'x.png')),
    ).rejects.toThrow(/colour "pink"/);
  });
});

describe('font', () => {
  it('has 3x5 glyphs for letters, digits and box punctuation; unknown characters draw as ?', () => {
    for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:-[]()?=/%#') {
      const rows = glyphRows(char);
      expect(rows, char).toHaveLength(5);
      for (const row of rows) expect(row, char).toMatch(/^[#.]{3}$/);
    }
    expect(glyphRows('~')).toEqual(glyphRows('?'));
    // Sample conversations label boxes #1, #2 …
    expect(glyphRows('#')).not.toEqual(glyphRows('?'));
    expect(glyphRows('a')).toEqual(glyphRows('A'));
    expect(labelSize('AB', 2)).toEqual({ width: 14, height: 10 });
  });
});
