// JS-side copies of small tensors the model also reads on the host (token ids, labels, masks). A tensor made
// from a JS array keeps its values on the host until a kernel first uses it; tfjs-webgpu then moves them to
// the GPU and a later dataSync() throws in Node (no OffscreenCanvas). Reading once, before any kernel, and
// remembering the copy keeps every later host read off the device.
import type * as tf from '@tensorflow/tfjs-core';

const copies = new WeakMap<tf.Tensor, tf.TypedArray>();

/**
 * The values of `t`, read at most once per tensor object (tensors are immutable, so the copy stays right).
 * Call it before the tensor's first kernel on webgpu; on cpu, wasm and tfjs-node it works at any time.
 */
export function hostValues(t: tf.Tensor): tf.TypedArray {
  let values = copies.get(t);
  if (values === undefined) {
    values = t.dataSync() as tf.TypedArray;
    copies.set(t, values);
  }
  return values;
}

/** hostValues as rows of a [B, T] tensor. */
export function hostRows(t: tf.Tensor2D): number[][] {
  const values = hostValues(t);
  const [B, T] = t.shape;
  return Array.from({ length: B }, (_, b) => Array.from(values.subarray(b * T, (b + 1) * T)));
}
