// Weight-only int8 products for inference (the one-token LM head reads a quarter of the bytes): activations
// stay float32, each weight row is int8 with one float scale. The int8 values travel in an int32 tensor, four
// to an element (tfjs has no int8 dtype), and are read back as bytes.
import type { Int8ProductArgs } from '@vistune/native';
import type { JsKernel } from './js-kernel.js';

/** The same product, vectorised (backend/native.ts installs @vistune/native's). */
export type NativeInt8Product = (args: Omit<Int8ProductArgs, 'isa' | 'threads'>) => void;

let nativeInt8Product: NativeInt8Product | null = null;

/** Runs the kernel on `fn` instead of the JS loop; null restores the loop. */
export function setNativeInt8Product(fn: NativeInt8Product | null): void {
  nativeInt8Product = fn;
}

/** Whether the int8 product runs natively. */
export function nativeInt8ProductActive(): boolean {
  return nativeInt8Product !== null;
}

/** x [rows, depth] float32, q [cols, depth / 4] int32 (packed int8), scales [cols] → [rows, cols]. */
export const int8ProductKernel: JsKernel<object> = {
  name: 'VistuneInt8Product',
  inputs: ['x', 'q', 'scales'],
  outputs: ([x, q]) => [{ shape: [x.shape[0] as number, q.shape[0] as number], dtype: 'float32' }],
  compute([x, q, scales], [out], _attrs, [xInfo, qInfo]) {
    const [rows, depth] = xInfo.shape as [number, number];
    const cols = qInfo.shape[0] as number;
    const bytes = new Int8Array(q.buffer, q.byteOffset, q.byteLength);
    if (
      nativeInt8Product &&
      x instanceof Float32Array &&
      scales instanceof Float32Array &&
      out instanceof Float32Array
    ) {
      nativeInt8Product({ x, q: bytes, scales, out, rows, cols, depth });
      return;
    }
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < cols; j++) {
        let acc = 0;
        for (let i = 0; i < depth; i++)
          acc += (x[r * depth + i] as number) * (bytes[j * depth + i] as number);
        out[r * cols + j] = acc * (scales[j] as number);
      }
  },
};
