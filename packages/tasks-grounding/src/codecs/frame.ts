// Original-image pixels ↔ a codec's [0,1] frame, through the processor's ImageTransform.
import type { ImageTransform } from '@vistune/encoders';
import { type Box, clampBox } from '../box.js';
import type { CodecFrame } from './types.js';

export interface FrameMap {
  /** Original pixels → [0,1] frame coordinates (outside [0,1] when the point is cropped away). */
  toUnit(x: number, y: number): [number, number];
  /** [0,1] frame coordinates → original pixels. */
  fromUnit(u: number, v: number): [number, number];
}

/** LLaVA/Shikra `expand2square` offsets: the original centred on a square of side max(W, H), offsets floored. */
export function squarePadding(width: number, height: number): { side: number; left: number; top: number } {
  const side = Math.max(width, height);
  return { side, left: Math.floor((side - width) / 2), top: Math.floor((side - height) / 2) };
}

export function frameMap(transform: ImageTransform, frame: CodecFrame): FrameMap {
  const s = transform.steps;
  if (frame === 'processed') {
    return {
      toUnit: (x, y) => {
        const [px, py] = transform.toProcessed(x, y);
        return [px / s.width, py / s.height];
      },
      fromUnit: (u, v) => transform.toOriginal(u * s.width, v * s.height),
    };
  }
  if (frame === 'square') {
    const { side, left, top } = squarePadding(s.originalWidth, s.originalHeight);
    return {
      toUnit: (x, y) => [(x + left) / side, (y + top) / side],
      fromUnit: (u, v) => [u * side - left, v * side - top],
    };
  }
  return {
    toUnit: (x, y) => [x / s.originalWidth, y / s.originalHeight],
    fromUnit: (u, v) => [u * s.originalWidth, v * s.originalHeight],
  };
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** Original-pixel box → [0,1] frame box, clamped to the frame (parts cropped away are lost). */
export function boxToUnit(box: Box, map: FrameMap): Box {
  const [u1, v1] = map.toUnit(box[0], box[1]);
  const [u2, v2] = map.toUnit(box[2], box[3]);
  return [clamp01(u1), clamp01(v1), clamp01(u2), clamp01(v2)];
}

/** [0,1] frame box → original-pixel box, clamped to the original image (padding is not image). */
export function unitToBox(unit: Box, map: FrameMap, transform: ImageTransform): Box {
  const [x1, y1] = map.fromUnit(unit[0], unit[1]);
  const [x2, y2] = map.fromUnit(unit[2], unit[3]);
  return clampBox([x1, y1, x2, y2], transform.steps.originalWidth, transform.steps.originalHeight);
}
