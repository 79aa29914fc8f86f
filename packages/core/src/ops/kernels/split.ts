// Column and row blocks of a 2D matrix in one pass each (tf.slice on wasm copies strided columns element by
// element, and is slow even for contiguous rows).
import type { JsKernel } from './js-kernel.js';

/** Widths of the blocks: `size` each, the last one what remains. */
export function blockSizes(total: number, size: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < total; start += size) out.push(Math.min(size, total - start));
  return out;
}

/** x [R, C] → blocks [R, c_k] of consecutive columns, widths blockSizes(C, size). */
export const splitColumns: JsKernel<{ size: number }> = {
  name: 'VistuneSplitColumns',
  inputs: ['x'],
  outputs: ([x], { size }) =>
    blockSizes(x.shape[1], size).map((w) => ({ shape: [x.shape[0], w], dtype: 'float32' as const })),
  compute([x], outs, { size }, [info]) {
    const [R, C] = info.shape;
    outs.forEach((out, k) => {
      const start = k * size;
      const w = out.length / R;
      for (let i = 0; i < R; i++) out.set(x.subarray(i * C + start, i * C + start + w), i * w);
    });
  },
};

/** x [R, C] → blocks [r_k, C] of consecutive rows, heights blockSizes(R, size). */
export const splitRows: JsKernel<{ size: number }> = {
  name: 'VistuneSplitRows',
  inputs: ['x'],
  outputs: ([x], { size }) =>
    blockSizes(x.shape[0], size).map((h) => ({ shape: [h, x.shape[1]], dtype: 'float32' as const })),
  compute([x], outs, { size }, [info]) {
    const C = info.shape[1];
    outs.forEach((out, k) => {
      const start = k * size * C;
      out.set(x.subarray(start, start + out.length));
    });
  },
};
