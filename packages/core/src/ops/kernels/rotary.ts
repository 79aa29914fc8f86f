// Rotary embedding in one pass (HF rotate_half layout): x·cos + rotate_half(x)·sin without the split, negate,
// concat, two products and a sum the tfjs composition runs (each a full pass; ~20 % of the demo's step).
import type * as tf from '@tensorflow/tfjs-core';
import type { RotaryArgs } from '@vistune/native';
import type { JsKernel } from './js-kernel.js';

export interface RotaryAttrs {
  /** 1: the rotation; −1: its adjoint (the gradient), x·cos + rotate_halfᵀ(x·sin) = the rotation with −sin. */
  sign: 1 | -1;
}

/** The same rotation, vectorised (backend/native.ts installs @vistune/native's): the JS loop's bits. */
export type NativeRotary = (args: Omit<RotaryArgs, 'isa'>) => void;

let nativeRotary: NativeRotary | null = null;

/** Runs the kernel on `fn` instead of the JS loop (~6 % of a demo training step); null restores the loop. */
export function setNativeRotary(fn: NativeRotary | null): void {
  nativeRotary = fn;
}

/** Whether the rotary kernel runs the native twin. */
export function nativeRotaryActive(): boolean {
  return nativeRotary !== null;
}

/** x [B, H, T, D], cos and sin [B or 1, 1, T, D] with each half of D repeating the same D/2 angles. */
export const rotaryKernel: JsKernel<RotaryAttrs> = {
  name: 'VistuneRotary',
  inputs: ['x', 'cos', 'sin'],
  outputs: ([x]) => [{ shape: x.shape, dtype: 'float32' }],
  compute([x, cos, sin], [out], { sign }, [xInfo, cosInfo]: tf.TensorInfo[]) {
    const [B, H, T, D] = xInfo.shape;
    if (nativeRotary && [x, cos, sin, out].every((a) => a instanceof Float32Array)) {
      const [x32, cos32, sin32, out32] = [x, cos, sin, out] as Float32Array[];
      nativeRotary({
        x: x32,
        cos: cos32,
        sin: sin32,
        out: out32,
        batch: B,
        heads: H,
        positions: T,
        dim: D,
        angleBatches: cosInfo.shape[0],
        sign,
      });
      return;
    }
    const half = D / 2;
    const perAngleBatch = cosInfo.shape[0] === 1 ? 0 : T * D;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < T; t++) {
          const o = ((b * H + h) * T + t) * D;
          const a = b * perAngleBatch + t * D;
          for (let i = 0; i < half; i++) {
            const x1 = x[o + i];
            const x2 = x[o + half + i];
            out[o + i] = x1 * cos[a + i] - sign * x2 * sin[a + i];
            out[o + half + i] = x2 * cos[a + half + i] + sign * x1 * sin[a + half + i];
          }
        }
      }
    }
  },
};
