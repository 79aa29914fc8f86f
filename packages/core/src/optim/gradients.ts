import type * as tf from '@tensorflow/tfjs-core';
import { variableGradsFreeing } from '../ops/backprop.js';

/**
 * Loss and gradients of the trainable parameters among `params`, keyed by parameter name. Frozen ones and
 * ones the loss does not reach get no entry. Intermediate tensors are freed; the caller disposes the grads.
 * Reads the loss synchronously; computeGradientsAsync awaits it (webgpu).
 */
export function computeGradients(
  lossFn: () => tf.Scalar,
  params: readonly [string, tf.Variable][],
): { loss: number; grads: Map<string, tf.Tensor> } {
  const { value, grads } = lossAndGradients(lossFn, params);
  try {
    return { loss: value.dataSync()[0], grads };
  } finally {
    value.dispose();
  }
}

/** computeGradients with the loss read awaited: the same numbers, and it runs on webgpu. */
export async function computeGradientsAsync(
  lossFn: () => tf.Scalar,
  params: readonly [string, tf.Variable][],
): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const { value, grads } = lossAndGradients(lossFn, params);
  try {
    return { loss: (await value.data())[0], grads };
  } finally {
    value.dispose();
  }
}

/** The loss tensor (not read) and the gradients by parameter name. */
function lossAndGradients(
  lossFn: () => tf.Scalar,
  params: readonly [string, tf.Variable][],
): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const trainable = params.filter(([, v]) => v.trainable);
  if (trainable.length === 0) {
    throw new Error(
      'computeGradients: no trainable parameter among the ones given (unfreeze some with trainOnly)',
    );
  }
  // tf.variableGrads would hold every intermediate gradient until the backward pass ends (ops/backprop.ts).
  const { value, grads } = variableGradsFreeing(
    lossFn,
    trainable.map(([, v]) => v),
  );
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of trainable) {
    const g = grads[v.name];
    if (g) out.set(name, g);
  }
  return { value, grads: out };
}
