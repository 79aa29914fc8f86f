// Weight-only int8 (symmetric, one scale per output row, as bitsandbytes' and llama.cpp's Q8 per-row modes):
// w ≈ scale · q with q = round(w / scale) in [−127, 127] and scale = max|w| / 127. For inference only: the
// product has no gradient.
import * as tf from '@tensorflow/tfjs-core';
import { int8ProductKernel } from './kernels/int8-product.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { reshape } from './shape.js';

/** A [cols, depth] weight as int8 rows: q packs four int8 values per int32 ([cols, depth / 4]). */
export interface Int8Rows {
  q: tf.Tensor2D;
  scales: tf.Tensor1D;
  cols: number;
  depth: number;
}

/** Quantizes an HF-layout [out, in] weight row by row; `in` must be a multiple of 4 (the packing). */
export function quantizeRowsInt8(weight: tf.Tensor2D, name = 'weight'): Int8Rows {
  const [cols, depth] = weight.shape;
  if (depth % 4 !== 0)
    throw new Error(
      `quantizeRowsInt8: ${name} has ${depth} input features; int8 rows are packed four to an int32, so it must be a multiple of 4 (keep this weight in float32)`,
    );
  const values = weight.dataSync() as Float32Array;
  const bytes = new Int8Array(cols * depth);
  const scales = new Float32Array(cols);
  for (let j = 0; j < cols; j++) {
    let max = 0;
    for (let i = 0; i < depth; i++) max = Math.max(max, Math.abs(values[j * depth + i] as number));
    const scale = max / 127;
    scales[j] = scale;
    if (scale === 0) continue;
    for (let i = 0; i < depth; i++)
      bytes[j * depth + i] = Math.round((values[j * depth + i] as number) / scale);
  }
  const packed = new Int32Array(bytes.buffer, 0, bytes.length / 4);
  return {
    q: tf.tensor2d(packed, [cols, depth / 4], 'int32'),
    scales: tf.tensor1d(scales, 'float32'),
    cols,
    depth,
  };
}

/** y = x · (scale ⊙ q)ᵀ: x [..., depth] → [..., cols], the float32 product of `linear` on the dequantized weight. */
export function int8Linear(x: tf.Tensor, w: Int8Rows): tf.Tensor {
  if (x.shape[x.rank - 1] !== w.depth)
    throw new Error(`int8Linear: input last dim ${x.shape[x.rank - 1]} != weight in-features ${w.depth}`);
  return tf.tidy(() => {
    const x2d = reshape(x, [-1, w.depth]);
    const [y] = runJsKernel(int8ProductKernel, { x: x2d, q: w.q, scales: w.scales }, {});
    return reshape(y as tf.Tensor, [...x.shape.slice(0, -1), w.cols]);
  });
}

/** The float32 weight int8 rows stand for (scale · q), e.g. to measure the rounding. */
export function dequantizeRowsInt8(w: Int8Rows): tf.Tensor2D {
  const packed = w.q.dataSync() as Int32Array;
  const bytes = new Int8Array(packed.buffer, packed.byteOffset, packed.byteLength);
  const scales = w.scales.dataSync() as Float32Array;
  const out = new Float32Array(w.cols * w.depth);
  for (let j = 0; j < w.cols; j++)
    for (let i = 0; i < w.depth; i++)
      out[j * w.depth + i] = (bytes[j * w.depth + i] as number) * (scales[j] as number);
  return tf.tensor2d(out, [w.cols, w.depth], 'float32');
}
