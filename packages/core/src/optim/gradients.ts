import type * as tf from '@tensorflow/tfjs-core';
import { variableGradsFreeing } from '../ops/backprop.js';

/**
 * Loss and gradients of the trainable parameters among `params`, keyed by parameter name. Frozen ones and
 * ones the loss does not reach get no entry. Intermediate tensors are freed; the caller disposes the grads.
 */
export function computeGradients(
  lossFn: () => tf.Scalar,
  params: readonly [string, tf.Variable][],
): { loss: number; grads: Map<string, tf.Tensor> } {
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
  const loss = value.dataSync()[0];
  value.dispose();
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of trainable) {
    const g = grads[v.name];
    if (g) out.set(name, g);
  }
  return { loss, grads: out };
}
