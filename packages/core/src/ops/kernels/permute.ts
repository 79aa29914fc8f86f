// Axis permutations that keep the last axis last, as copies of contiguous rows. tfjs's wasm Transpose walks
// every element through a generic rank-N index: ~60 ns per element for the ViT's 6-D patch split (11.6 ms a
// step, 15 % of the demo's), this moves whole rows.
import type { JsKernel } from './js-kernel.js';

export interface PermuteAttrs {
  perm: number[];
}

export const permuteKernel: JsKernel<PermuteAttrs> = {
  name: 'VistunePermuteRows',
  inputs: ['x'],
  outputs: ([x], { perm }) => [
    { shape: perm.map((p) => x.shape[p] as number), dtype: x.dtype === 'int32' ? 'int32' : 'float32' },
  ],
  compute([x], [out], { perm }, [info]) {
    const shape = info.shape;
    const rank = shape.length;
    const row = shape[rank - 1] as number;
    const inStrides = new Array<number>(rank).fill(1);
    for (let d = rank - 2; d >= 0; d--)
      inStrides[d] = (inStrides[d + 1] as number) * (shape[d + 1] as number);
    // Output axes but the last, with the input stride each one steps by.
    const outShape = perm.slice(0, -1).map((p) => shape[p] as number);
    const step = perm.slice(0, -1).map((p) => inStrides[p] as number);
    const rows = outShape.reduce((a, b) => a * b, 1);
    const index = new Array<number>(outShape.length).fill(0);
    let src = 0;
    for (let r = 0; r < rows; r++) {
      const dst = r * row;
      for (let j = 0; j < row; j++) out[dst + j] = x[src + j] as number;
      // Odometer over the output's outer axes, moving src by the matching input strides.
      for (let d = outShape.length - 1; d >= 0; d--) {
        src += step[d] as number;
        if (++(index[d] as number) < (outShape[d] as number)) break;
        src -= (step[d] as number) * (outShape[d] as number);
        index[d] = 0;
      }
    }
  },
};
