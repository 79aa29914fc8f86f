// Reshape and same-shape add whose gradients keep nothing alive. tfjs's Reshape and Add gradients save their
// inputs only to read the shapes, which pins every reshaped or residual-added activation (each linear's output,
// each residual branch) in memory until the backward pass ends.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';

/** tf.reshape with a gradient that saves nothing (plain tf.reshape when no gradient is being recorded). */
export function reshape(x: tf.Tensor, shape: number[]): tf.Tensor {
  if (!tf.engine().isTapeOn()) return tf.reshape(x, shape);
  const inShape = x.shape;
  return customGrad(([t]: [tf.Tensor]) => ({
    value: tf.reshape(t, shape),
    gradFunc: (dy) => [tf.reshape(dy, inShape)],
  }))(x);
}

/** a + b for equal shapes (residual connections), with a gradient that saves nothing. */
export function addSameShape(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!tf.engine().isTapeOn() || !tf.util.arraysEqual(a.shape, b.shape)) return tf.add(a, b);
  return customGrad(([x, y]: [tf.Tensor, tf.Tensor]) => ({
    value: tf.add(x, y),
    // A clone for the second input: the engine may dispose one accumulated gradient while the other lives on.
    gradFunc: (dy) => [dy, tf.clone(dy)],
  }))(a, b);
}
