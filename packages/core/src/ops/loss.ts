// Cross-entropy with a hand-written gradient: softmax − indicator, the indicator applied with a scatter
// of N values, so no [tokens × vocab] one-hot is ever built (tfjs's oneHot CE builds two).
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { softmaxCrossEntropyGrad, softmaxCrossEntropyLoss } from './kernels/cross-entropy.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { opPolicy } from './policy.js';

/** Flat positions i·V + label_i of each row's label in a row-major [N, V] (gather with batchDims is wrong on wasm 4.22). */
function labelPositions(labels: tf.Tensor1D, N: number, V: number): tf.Tensor1D {
  return tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), labels);
}

/**
 * wasm/cpu: p = softmax(x) once (saved for the backward, which is then one JS pass), the loss read from
 * p[label] by a JS kernel. No exp is computed twice and no [N, V] temporary besides p and the gradient.
 */
function crossEntropyFromSoftmax(logits: tf.Tensor2D, labels: tf.Tensor1D, ignoreIndex: number): tf.Scalar {
  const [N] = logits.shape;
  const loss = customGrad(([x]: [tf.Tensor], save) => {
    const valid = tf.notEqual(labels, ignoreIndex);
    const rowLabels = tf.where(valid, tf.cast(labels, 'int32'), tf.fill([N], -1, 'int32')); // -1 = ignored
    const weight = tf.cast(valid, 'float32');
    const count = tf.maximum(tf.sum(weight), 1);
    const p = tf.softmax(x);
    const [rowLoss] = runJsKernel(softmaxCrossEntropyLoss, { logits: x, probs: p, labels: rowLabels }, {});
    save([p, rowLabels, weight, count]);
    return {
      value: tf.div(tf.sum(rowLoss), count),
      gradFunc: (dy, [sp, sLabels, sWeight, sCount]) => {
        const rowScale = tf.div(tf.mul(sWeight, dy), sCount);
        return runJsKernel(softmaxCrossEntropyGrad, { probs: sp, labels: sLabels, rowScale }, {});
      },
    };
  });
  return loss(logits) as tf.Scalar;
}

/** Mean cross-entropy over positions whose label != ignoreIndex. logits: [N, V], labels: int32 [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, ignoreIndex = -100): tf.Scalar {
  const [N, V] = logits.shape;
  if (labels.rank !== 1 || labels.shape[0] !== N) {
    throw new Error(
      `crossEntropy: labels shape [${labels.shape}] must be [N] = [${N}] for logits [${logits.shape}]`,
    );
  }
  if (opPolicy().jsKernels && logits.dtype === 'float32')
    return crossEntropyFromSoftmax(logits, labels, ignoreIndex);
  const loss = customGrad(([x]: [tf.Tensor], save) => {
    const valid = tf.notEqual(labels, ignoreIndex);
    const safeLabels = tf.where(valid, tf.cast(labels, 'int32'), tf.zeros([N], 'int32'));
    const weight = tf.cast(valid, 'float32'); // [N]
    const count = tf.maximum(tf.sum(weight), 1);
    const max = tf.max(x, -1, true);
    const logSumExp = tf.add(max, tf.log(tf.sum(tf.exp(tf.sub(x, max)), -1, true))); // [N, 1]
    const positions = labelPositions(safeLabels, N, V);
    const picked = tf.gather(tf.reshape(x, [N * V]), positions); // x[i, label_i]
    const value = tf.div(tf.sum(tf.mul(tf.sub(tf.reshape(logSumExp, [N]), picked), weight)), count);
    save([x, logSumExp, positions, weight, count]);
    return {
      value,
      gradFunc: (dy, [sx, slse, spositions, sweight, scount]) => {
        const rowScale = tf.div(tf.mul(sweight, dy), scount); // [N]
        const scaledProbs = tf.reshape(tf.mul(tf.exp(tf.sub(sx, slse)), tf.reshape(rowScale, [N, 1])), [
          N * V,
        ]);
        // subtract rowScale at (i, label_i): the indicator part of softmax − one_hot
        const updated = tf.sub(tf.gather(scaledProbs, spositions), rowScale);
        const grad = tf.tensorScatterUpdate(
          scaledProbs,
          tf.reshape(spositions, [N, 1]) as tf.Tensor2D,
          updated,
        );
        return [tf.reshape(grad, [N, V])];
      },
    };
  });
  return loss(logits) as tf.Scalar;
}
