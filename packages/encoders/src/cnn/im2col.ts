// The columns of a 3×3, stride-2, padding-1 convolution as one JS pass (and its transpose for the gradient):
// tfjs's wasm slice/pad/concat on 6-D views cost ~100× more than the copy itself.
import { tf } from '@vistune/core';

const K = 3;

/** Where the input is read: [N, C, H, W] (pixels) or [N, H, W, C] (feature maps). */
export type ConvLayout = 'NCHW' | 'NHWC';

/** Visits every (column index, input index) pair of the im2col of one input. */
function eachTap(
  shape: readonly number[],
  layout: ConvLayout,
  visit: (column: number, input: number) => void,
): void {
  const [n, a, b, d] = shape as [number, number, number, number];
  const [c, h, w] = layout === 'NCHW' ? [a, b, d] : [d, a, b];
  const oh = h / 2;
  const ow = w / 2;
  const cols = K * K * c;
  for (let img = 0; img < n; img++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const base = ((img * oh + i) * ow + j) * cols;
        for (let ky = 0; ky < K; ky++) {
          const y = 2 * i + ky - 1;
          if (y < 0 || y >= h) continue;
          for (let kx = 0; kx < K; kx++) {
            const x = 2 * j + kx - 1;
            if (x < 0 || x >= w) continue;
            const column = base + (ky * K + kx) * c;
            for (let ch = 0; ch < c; ch++)
              visit(
                column + ch,
                layout === 'NCHW' ? ((img * c + ch) * h + y) * w + x : ((img * h + y) * w + x) * c + ch,
              );
          }
        }
      }
}

/** input → [N·(H/2)·(W/2), 9·C] rows in (ky, kx, channel) order; differentiable (the gradient scatters back). */
export function im2col(input: tf.Tensor4D, layout: ConvLayout): tf.Tensor2D {
  const shape = input.shape;
  const c = layout === 'NCHW' ? shape[1] : shape[3];
  const [h, w] = layout === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
  if (h % 2 !== 0 || w % 2 !== 0)
    throw new Error(
      `cnn_vision: a stage needs even height and width, got ${h}×${w}: use sides that are multiples of patch_size`,
    );
  const rows = shape[0] * (h / 2) * (w / 2);
  const op = tf.customGrad(((x: tf.Tensor) => {
    const src = x.dataSync() as Float32Array;
    const out = new Float32Array(rows * K * K * c);
    eachTap(shape, layout, (column, at) => {
      out[column] = src[at] as number;
    });
    return {
      value: tf.tensor2d(out, [rows, K * K * c]),
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync() as Float32Array;
        const dx = new Float32Array(tf.util.sizeFromShape(shape));
        eachTap(shape, layout, (column, at) => {
          dx[at] = (dx[at] as number) + (g[column] as number);
        });
        return tf.tensor(dx, shape);
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(input) as tf.Tensor2D;
}
