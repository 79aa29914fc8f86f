// Embedding gradient: out[ids[i], :] += dy[i, :] into a zeroed [rows, D], written straight into the backend's
// memory (the generic JS UnsortedSegmentSum builds the [rows, D] table in JS and copies it into the heap).
import type { JsKernel } from './js-kernel.js';

export const scatterAddRows: JsKernel<{ numRows: number }> = {
  name: 'VistuneScatterAddRows',
  inputs: ['x', 'ids'],
  outputs: ([x], { numRows }) => [{ shape: [numRows, x.shape[1]], dtype: 'float32' }],
  compute([x, ids], [out], { numRows }, [info]) {
    const D = info.shape[1];
    out.fill(0);
    for (let i = 0; i < ids.length; i++) {
      const row = ids[i];
      if (row < 0 || row >= numRows) continue; // TF semantics: out-of-range ids contribute nothing
      const src = i * D;
      const dst = row * D;
      for (let j = 0; j < D; j++) out[dst + j] += x[src + j];
    }
  },
};
