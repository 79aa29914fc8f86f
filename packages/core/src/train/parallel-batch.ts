// Micro-batches across threads: every tensor of a MultimodalBatch becomes a typed array (its buffer
// transferred, not copied again), everything else is kept as structured-clone data; the worker rebuilds
// the same tensors. Generic over the batch's fields, so head targets and new media kinds travel too.
import * as tf from '@tensorflow/tfjs-core';
import type { MultimodalBatch } from '../multimodal/model.js';

/** A tensor on its way to another thread. */
interface EncodedTensor {
  readonly encodedTensor: true;
  values: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
}

/** A batch as structured-clone data: tensors encoded, the rest as it was. */
export type EncodedValue = EncodedTensor | EncodedValue[] | { [key: string]: EncodedValue } | PlainValue;
type PlainValue = string | number | boolean | null | undefined;

function isEncodedTensor(value: unknown): value is EncodedTensor {
  return typeof value === 'object' && value !== null && (value as EncodedTensor).encodedTensor === true;
}

function encodeValue(value: unknown, transfer: ArrayBuffer[], path: string): EncodedValue {
  if (value instanceof tf.Tensor) {
    if (value.dtype !== 'float32' && value.dtype !== 'int32' && value.dtype !== 'bool')
      throw new Error(
        `data-parallel batch: ${path} is a ${value.dtype} tensor; only float32, int32 and bool travel`,
      );
    // A copy: on the cpu backend dataSync hands out the tensor's own storage, which must not be detached.
    const values = (value.dataSync() as Float32Array | Int32Array | Uint8Array).slice();
    transfer.push(values.buffer as ArrayBuffer);
    return { encodedTensor: true, values, shape: [...value.shape], dtype: value.dtype };
  }
  if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, transfer, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null)
      throw new Error(
        `data-parallel batch: ${path} is a ${proto?.constructor?.name ?? 'class'} instance; only tensors, arrays and plain objects travel to workers`,
      );
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, encodeValue(v, transfer, `${path}.${k}`)]),
    );
  }
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint')
    throw new Error(`data-parallel batch: ${path} is a ${typeof value}; it cannot travel to a worker`);
  return value as PlainValue;
}

/** The batch as structured-clone data plus the buffers to transfer with it; the batch itself is untouched. */
export function encodeBatch(batch: MultimodalBatch): { encoded: EncodedValue; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  return { encoded: encodeValue(batch, transfer, 'batch'), transfer };
}

function decodeValue(value: EncodedValue): unknown {
  if (isEncodedTensor(value)) return tf.tensor(value.values, value.shape, value.dtype);
  if (Array.isArray(value)) return value.map(decodeValue);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeValue(v)]));
  return value;
}

/** The batch encodeBatch encoded, as new tensors (the caller disposes them). */
export function decodeBatch(encoded: EncodedValue): MultimodalBatch {
  return decodeValue(encoded) as MultimodalBatch;
}
