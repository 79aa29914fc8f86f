// Rasteriser: a layout → RGB pixels (background, then each shape with 4x4 supersampled coverage for antialiasing).
import { createRng } from './random.js';
import type { SceneBackground, SceneLayout, SceneObject } from './scene.js';
import { shapeGeometry } from './shapes.js';

/** Row-major RGB pixels, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const SUBSAMPLES = 4;

function paintBackground(background: SceneBackground, size: number, data: Uint8Array): void {
  const { from, to, angle, noise } = background;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // Projection of the image corners on the gradient direction spans [-half, half].
  const half = ((Math.abs(cos) + Math.abs(sin)) * size) / 2;
  const noiseRng = createRng('background-noise', background.noiseSeed);
  const start = [from[0], from[1], from[2]];
  const delta = [to[0] - from[0], to[1] - from[1], to[2] - from[2]];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = ((x + 0.5 - size / 2) * cos + (y + 0.5 - size / 2) * sin + half) / (2 * half);
      const offset = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const grain = noise > 0 ? noiseRng.int(-noise, noise) : 0;
        // A Uint8Array wraps out-of-range values (256 → 0), so clamp first.
        const value = (start[c] as number) + (delta[c] as number) * t + grain;
        data[offset + c] = Math.round(Math.min(255, Math.max(0, value)));
      }
    }
  }
}

/**
 * Calls `visit(px, py, coverage)` for every pixel the object touches, coverage = the fraction of its
 * 4×4 subsamples inside the shape (> 0). The renderer and the object masks share it.
 */
export function objectCoverage(
  object: SceneObject,
  size: number,
  visit: (px: number, py: number, coverage: number) => void,
): void {
  const geometry = shapeGeometry(object.shape, object.centre[0], object.centre[1], object.radius);
  const [x1, y1, x2, y2] = geometry.box;
  for (let py = Math.max(0, Math.floor(y1)); py < Math.min(size, Math.ceil(y2)); py++) {
    for (let px = Math.max(0, Math.floor(x1)); px < Math.min(size, Math.ceil(x2)); px++) {
      let inside = 0;
      for (let sy = 0; sy < SUBSAMPLES; sy++) {
        for (let sx = 0; sx < SUBSAMPLES; sx++) {
          if (geometry.contains(px + (sx + 0.5) / SUBSAMPLES, py + (sy + 0.5) / SUBSAMPLES)) inside++;
        }
      }
      if (inside > 0) visit(px, py, inside / (SUBSAMPLES * SUBSAMPLES));
    }
  }
}

/** Renders a layout into RGB pixels; a pure function of the layout (the noise comes from its seed). */
export function renderScene(layout: SceneLayout): RgbImage {
  const size = layout.imageSize;
  const data = new Uint8Array(size * size * 3);
  paintBackground(layout.background, size, data);
  for (const object of layout.objects) {
    objectCoverage(object, size, (px, py, coverage) => {
      const offset = (py * size + px) * 3;
      for (let c = 0; c < 3; c++) {
        const under = data[offset + c] as number;
        data[offset + c] = Math.round(under + ((object.rgb[c] as number) - under) * coverage);
      }
    });
  }
  return { width: size, height: size, data };
}
