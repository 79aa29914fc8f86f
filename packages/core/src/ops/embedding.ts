// Embedding lookup whose gradient is a scatter-add of the output gradient rows into a dense [V, D]
// (UnsortedSegmentSum on tensorflow/webgpu; on wasm/cpu the op layer's JS kernel, kernels/scatter-rows.ts).
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { gatherRows, scatterAddRows } from './kernels/scatter-rows.js';
import { opPolicy } from './policy.js';

/** The [V, D] gradient of a lookup: dy rows scatter-added at their ids. */
function lookupGrad(dy: tf.Tensor, ids: tf.Tensor1D, V: number): tf.Tensor {
  if (!opPolicy().jsKernels) return tf.unsortedSegmentSum(dy, ids, V);
  const D = dy.shape[dy.rank - 1];
  return runJsKernel(scatterAddRows, { x: tf.reshape(dy, [-1, D]), ids }, { numRows: V })[0];
}

const lookup = customGrad(([table, ids]: [tf.Tensor, tf.Tensor], save) => {
  const flatIds = tf.cast(tf.reshape(ids, [-1]), 'int32');
  save([flatIds]);
  return {
    value:
      opPolicy().jsKernels && table.dtype === 'float32' && table.rank === 2
        ? runJsKernel(gatherRows, { table, ids: flatIds }, {})[0]
        : tf.gather(table, flatIds),
    gradFunc: (dy, [sIds]) => [lookupGrad(dy, sIds as tf.Tensor1D, table.shape[0]), tf.zeros(ids.shape)],
  };
});

/** Rows of table [V, D] at ids (int32, any shape) → [...ids.shape, D]. */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.reshape(lookup(table, ids), [...ids.shape, table.shape[1]]);
}
