// A typed front for tf.customGrad (its own signature mixes tensors and the save callback in one rest list).
import * as tf from '@tensorflow/tfjs-core';

export interface CustomGradResult {
  value: tf.Tensor;
  /** One gradient per input, in order; `saved` holds what the forward passed to save(). */
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

/** Wraps f(inputs, save) so that tfjs calls gradFunc instead of differentiating f's ops. */
export function customGrad<I extends tf.Tensor[]>(
  f: (inputs: I, save: tf.GradSaveFunc) => CustomGradResult,
): (...inputs: I) => tf.Tensor {
  const withGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return f(args.slice(0, -1) as I, save);
  });
  return (...inputs: I) => withGrad(...inputs);
}
