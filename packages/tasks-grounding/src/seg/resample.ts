// Differentiable bilinear resampling of mask maps as two 2-D matmuls (rows, then columns) with fixed
// interpolation matrices: exact PyTorch `F.interpolate(mode='bilinear', align_corners=False)` weights, only
// 2-D products on wasm, and the same code maps logits back through an image processor's pad/resize/crop.
import { matmul, tf } from '@vistune/core';

/** Where a point of the original image lands in the processed one (encoders' ImageTransform has this). */
export interface FrameTransform {
  toProcessed(x: number, y: number): [number, number];
}

/**
 * Interpolation matrix [coords.length, inSize] (row-major): row i samples a 1-D signal of `inSize` pixels at
 * the continuous pixel index coords[i] (0 = centre of pixel 0), linearly between its two neighbours, with
 * positions outside [0, inSize − 1] clamped to the edge pixel (PyTorch's bilinear border behaviour).
 */
export function interpolationMatrix(coords: ArrayLike<number>, inSize: number): Float32Array {
  const out = new Float32Array(coords.length * inSize);
  for (let i = 0; i < coords.length; i++) {
    const src = Math.min(Math.max(coords[i] as number, 0), inSize - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const frac = src - i0;
    out[i * inSize + i0] += 1 - frac;
    out[i * inSize + i1] += frac;
  }
  return out;
}

/** Source indices of an align_corners=False resize from `inSize` to `outSize` pixels (half-pixel centres). */
export function resizeCoords(outSize: number, inSize: number): Float32Array {
  const scale = inSize / outSize;
  return Float32Array.from({ length: outSize }, (_, i) => (i + 0.5) * scale - 0.5);
}

/**
 * x [N, h, w, C] → [N, H, W, C] with out[n, y, x, c] = Σ rows[y, i] · cols[x, j] · x[n, i, j, c], given
 * rows [H, h] and cols [W, w] as tensors. Two plain 2-D matmuls, so the gradient is two more.
 */
export function resampleSeparable(x: tf.Tensor4D, rows: tf.Tensor2D, cols: tf.Tensor2D): tf.Tensor4D {
  const [N, h, w, C] = x.shape;
  const [H, hIn] = rows.shape;
  const [W, wIn] = cols.shape;
  if (hIn !== h || wIn !== w)
    throw new Error(
      `resampleSeparable: the matrices take ${hIn}×${wIn} inputs but the maps are ${h}×${w}: build them for this size`,
    );
  return tf.tidy(() => {
    // Rows first: [h, N·w·C] (h leading) → [H, N·w·C].
    const byRow = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, N * w * C]);
    const rowsDone = tf.reshape(matmul(rows, byRow), [H, N, w, C]);
    // Then columns: [w, N·H·C] → [W, N·H·C] → [N, H, W, C].
    const byCol = tf.reshape(tf.transpose(rowsDone, [2, 1, 0, 3]), [w, N * H * C]);
    const colsDone = tf.reshape(matmul(cols, byCol), [W, N, H, C]);
    return tf.transpose(colsDone, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** Bilinear resize (align_corners=False) of x [N, h, w, C] to [N, H, W, C]. */
export function resizeBilinear(x: tf.Tensor4D, H: number, W: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (H === h && W === w) return x;
  return tf.tidy(() =>
    resampleSeparable(
      x,
      tf.tensor2d(interpolationMatrix(resizeCoords(H, h), h), [H, h]),
      tf.tensor2d(interpolationMatrix(resizeCoords(W, w), w), [W, w]),
    ),
  );
}

export interface OriginalFrame {
  width: number;
  height: number;
  /** Original → processed; default: the processed frame is a plain resize of the original. */
  transform?: FrameTransform;
}

/**
 * Interpolation matrices that sample a [h, w] map covering the processed frame [processedH, processedW] at
 * each ORIGINAL pixel centre (one bilinear sample through the processor's pad → resize → crop, instead of
 * SAM's upscale-then-resize). Pixels the processor cropped away take the nearest edge of the frame.
 */
export function originalFrameMatrices(
  mapSize: readonly [number, number],
  processedSize: readonly [number, number],
  original: OriginalFrame,
): { rows: Float32Array; cols: Float32Array } {
  const [h, w] = mapSize;
  const [processedH, processedW] = processedSize;
  const t: FrameTransform = original.transform ?? {
    toProcessed: (x, y) => [(x * processedW) / original.width, (y * processedH) / original.height],
  };
  // Processed-pixel position → map index: the map spans the processed frame edge to edge.
  const ys = Float32Array.from(
    { length: original.height },
    (_, y) => (t.toProcessed(0, y + 0.5)[1] * h) / processedH - 0.5,
  );
  const xs = Float32Array.from(
    { length: original.width },
    (_, x) => (t.toProcessed(x + 0.5, 0)[0] * w) / processedW - 0.5,
  );
  return { rows: interpolationMatrix(ys, h), cols: interpolationMatrix(xs, w) };
}

/** Logit maps [K, h, w] over the processed frame → [K, height, width] in the original image's pixels. */
export function toOriginalFrame(
  logits: tf.Tensor3D,
  processedSize: readonly [number, number],
  original: OriginalFrame,
): tf.Tensor3D {
  const [K, h, w] = logits.shape;
  const { rows, cols } = originalFrameMatrices([h, w], processedSize, original);
  return tf.tidy(
    () =>
      tf.reshape(
        resampleSeparable(
          tf.reshape(logits, [K, h, w, 1]) as tf.Tensor4D,
          tf.tensor2d(rows, [original.height, h]),
          tf.tensor2d(cols, [original.width, w]),
        ),
        [K, original.height, original.width],
      ) as tf.Tensor3D,
  );
}
