// RoIAlign (Mask R-CNN; torchvision.ops.roi_align semantics) as a linear map of the feature map: for each box
// the bilinear sampling weights form a [s·s, H·W] matrix, built on the CPU from the box coordinates, and the
// pooled features are one batched matmul with the [H·W, C] features. The op is differentiable w.r.t. the
// features (the matmul's gradient), not w.r.t. the boxes, as torchvision.
import { matmul, tf } from '@vistune/core';
import type { Box } from '../box.js';

export interface RoIAlignOptions {
  /** Output bins per side (s): each box gives s·s feature vectors, row-major. */
  outputSize: number;
  /** Feature cells per box unit along x and y (grid / image size for boxes in processed-image pixels). */
  spatialScale: number | readonly [x: number, y: number];
  /** Sample points per bin side; ≤ 0 = adaptive ceil(box size / outputSize), as torchvision. Default 2. */
  samplingRatio?: number;
  /** torchvision aligned=True (default): a feature cell's centre is at index + 0.5, so boxes shift by −0.5. */
  aligned?: boolean;
}

/** torchvision's bilinear_interpolate as weights: [index, weight] pairs (none when outside the map). */
function bilinearTaps(y: number, x: number, height: number, width: number): [number, number][] {
  if (y < -1 || y > height || x < -1 || x > width) return [];
  let yy = Math.max(y, 0);
  let xx = Math.max(x, 0);
  let yLow = Math.floor(yy);
  let xLow = Math.floor(xx);
  let yHigh = yLow + 1;
  let xHigh = xLow + 1;
  if (yLow >= height - 1) {
    yLow = yHigh = height - 1;
    yy = yLow;
  }
  if (xLow >= width - 1) {
    xLow = xHigh = width - 1;
    xx = xLow;
  }
  const ly = yy - yLow;
  const lx = xx - xLow;
  return [
    [yLow * width + xLow, (1 - ly) * (1 - lx)],
    [yLow * width + xHigh, (1 - ly) * lx],
    [yHigh * width + xLow, ly * (1 - lx)],
    [yHigh * width + xHigh, ly * lx],
  ];
}

/**
 * Sampling weights of one box over an H×W map: row `ph·s + pw` holds the weights of bin (ph, pw), so
 * pooled = weights · features. Written into `out` at row offset `rowOffset` (out has H·W columns).
 */
export function roiAlignWeights(
  box: Box,
  height: number,
  width: number,
  opts: RoIAlignOptions,
  out = new Float32Array(opts.outputSize * opts.outputSize * height * width),
  rowOffset = 0,
): Float32Array {
  const s = opts.outputSize;
  const [scaleX, scaleY] =
    typeof opts.spatialScale === 'number' ? [opts.spatialScale, opts.spatialScale] : opts.spatialScale;
  const aligned = opts.aligned ?? true;
  const ratio = opts.samplingRatio ?? 2;
  const offset = aligned ? 0.5 : 0;
  const startX = box[0] * scaleX - offset;
  const startY = box[1] * scaleY - offset;
  let roiW = box[2] * scaleX - offset - startX;
  let roiH = box[3] * scaleY - offset - startY;
  if (!aligned) {
    // The legacy op forces boxes to at least one cell.
    roiW = Math.max(roiW, 1);
    roiH = Math.max(roiH, 1);
  }
  const binW = roiW / s;
  const binH = roiH / s;
  const gridW = ratio > 0 ? ratio : Math.ceil(roiW / s);
  const gridH = ratio > 0 ? ratio : Math.ceil(roiH / s);
  const count = Math.max(gridW * gridH, 1);
  const cells = height * width;
  for (let ph = 0; ph < s; ph++) {
    for (let pw = 0; pw < s; pw++) {
      const row = (rowOffset + ph * s + pw) * cells;
      for (let iy = 0; iy < gridH; iy++) {
        const y = startY + ph * binH + ((iy + 0.5) * binH) / gridH;
        for (let ix = 0; ix < gridW; ix++) {
          const x = startX + pw * binW + ((ix + 0.5) * binW) / gridW;
          for (const [cell, w] of bilinearTaps(y, x, height, width)) out[row + cell] += w / count;
        }
      }
    }
  }
  return out;
}

/**
 * features [N, H·W, C] (row-major grid tokens), boxes per item (K each, in the units spatialScale maps to
 * cells) → [N, K·s·s, C]: box k of item n occupies rows k·s·s … (k+1)·s·s − 1.
 */
export function roiAlign(
  features: tf.Tensor3D,
  grid: readonly [height: number, width: number],
  boxes: readonly (readonly Box[])[],
  opts: RoIAlignOptions,
): tf.Tensor3D {
  const [N, cells] = features.shape;
  const [height, width] = grid;
  if (cells !== height * width)
    throw new Error(`roiAlign: features have ${cells} tokens per item but the grid is ${height}×${width}`);
  if (boxes.length !== N) throw new Error(`roiAlign: ${boxes.length} box lists for ${N} feature maps`);
  const K = boxes[0]?.length ?? 0;
  if (K === 0 || boxes.some((b) => b.length !== K))
    throw new Error('roiAlign: every item needs the same, non-zero number of boxes');
  const bins = opts.outputSize * opts.outputSize;
  const weights = new Float32Array(N * K * bins * cells);
  boxes.forEach((list, n) => {
    list.forEach((box, k) => {
      roiAlignWeights(box, height, width, opts, weights, (n * K + k) * bins);
    });
  });
  return tf.tidy(() => matmul(tf.tensor3d(weights, [N, K * bins, cells]), features) as tf.Tensor3D);
}
