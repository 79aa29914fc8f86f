import * as tf from '@tensorflow/tfjs-core';
import { Module } from './module.js';
import type { Rng } from './rng.js';

/**
 * Inverted dropout (torch.nn.Dropout): in training mode zeroes each element with probability p and scales
 * the rest by 1/(1-p). In eval mode (or p = 0) it returns x itself. Each call draws a fresh mask seed from `rng`.
 */
export class Dropout extends Module {
  constructor(
    readonly p: number,
    private readonly rng: Rng,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training || this.p === 0) return x;
    return tf.dropout(x, this.p, undefined, this.rng.nextUint32());
  }
}
