// Embedding lookup whose gradient is a scatter-add of the output gradient rows into a dense [V, D]
// (UnsortedSegmentSum: native on tensorflow/webgpu, a JS kernel on wasm/cpu, see backend/kernel-shims.ts).
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';

const lookup = customGrad(([table, ids]: [tf.Tensor, tf.Tensor], save) => {
  const flatIds = tf.cast(tf.reshape(ids, [-1]), 'int32');
  save([flatIds]);
  return {
    value: tf.gather(table, flatIds),
    gradFunc: (dy, [sIds]) => [
      tf.unsortedSegmentSum(dy, sIds as tf.Tensor1D, table.shape[0]),
      tf.zeros(ids.shape),
    ],
  };
});

/** Rows of table [V, D] at ids (int32, any shape) → [...ids.shape, D]. */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.reshape(lookup(table, ids), [...ids.shape, table.shape[1]]);
}
