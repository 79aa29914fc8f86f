// Test helper: finds the objects in rendered pixels without the layout (bright connected regions on the dark
// background), so tests can check layouts, answers and boxes against what is actually drawn.
import type { RgbImage } from './render.js';
import { COLOUR_NAMES, COLOURS, type ColourName, type PixelBox } from './shapes.js';

export interface PixelObject {
  /** Pixel extent [x1, y1, x2, y2), the same convention as layout boxes. */
  box: PixelBox;
  pixels: number;
  /** Named colour nearest to the mean of the object's solid pixels. */
  colour: ColourName;
}

// Background channels stay below 90 and every object colour has a channel above 200; faint antialiased edges count.
const INK_THRESHOLD = 100;
const SOLID_THRESHOLD = 190;

const maxChannel = (image: RgbImage, index: number): number =>
  Math.max(
    image.data[index * 3] as number,
    image.data[index * 3 + 1] as number,
    image.data[index * 3 + 2] as number,
  );

/** 8-connected regions of bright pixels, largest first (objects are ≥ 2 px apart, so they never join). */
export function findPixelObjects(image: RgbImage): PixelObject[] {
  const { width, height } = image;
  const seen = new Uint8Array(width * height);
  const objects: PixelObject[] = [];
  for (let start = 0; start < width * height; start++) {
    if (seen[start] === 1 || maxChannel(image, start) < INK_THRESHOLD) continue;
    const stack = [start];
    seen[start] = 1;
    let [x1, y1, x2, y2] = [width, height, 0, 0];
    let pixels = 0;
    const sum = [0, 0, 0];
    let solid = 0;
    while (stack.length > 0) {
      const index = stack.pop() as number;
      const x = index % width;
      const y = Math.floor(index / width);
      pixels++;
      [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
      if (maxChannel(image, index) >= SOLID_THRESHOLD) {
        solid++;
        for (let c = 0; c < 3; c++) sum[c] = (sum[c] as number) + (image.data[index * 3 + c] as number);
      }
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const [nx, ny] = [x + dx, y + dy];
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const next = ny * width + nx;
          if (seen[next] === 0 && maxChannel(image, next) >= INK_THRESHOLD) {
            seen[next] = 1;
            stack.push(next);
          }
        }
      }
    }
    const mean = sum.map((v) => v / Math.max(1, solid));
    const colour = COLOUR_NAMES.reduce((best, name) => {
      const distance = (n: ColourName): number =>
        COLOURS[n].reduce((acc, v, c) => acc + (v - (mean[c] as number)) ** 2, 0);
      return distance(name) < distance(best) ? name : best;
    });
    objects.push({ box: [x1, y1, x2, y2], pixels, colour });
  }
  return objects.sort((a, b) => b.pixels - a.pixels);
}
