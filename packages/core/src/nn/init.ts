import * as tf from '@tensorflow/tfjs-core';
import { Rng } from './rng.js';

export interface InitializerOptions {
  /** Seed of the weight stream; the same seed and build order give the same weights. Default 0. */
  seed?: number;
  /** Std of normal inits, HF `initializer_range`. Default 0.02. */
  std?: number;
  /** false: normal() returns zeros, for models whose weights are about to be loaded (skips the sampling). */
  random?: boolean;
}

/**
 * HF `_init_weights` defaults: linear and embedding weights ~ N(0, initializer_range²), biases zero,
 * norm weights one. Layers draw from it in construction order.
 */
export class Initializer {
  readonly rng: Rng;
  readonly std: number;
  readonly random: boolean;

  constructor(opts: InitializerOptions = {}) {
    this.rng = new Rng(opts.seed ?? 0);
    this.std = opts.std ?? 0.02;
    this.random = opts.random ?? true;
  }

  normal(shape: number[], std = this.std): tf.Tensor {
    if (!this.random) return tf.zeros(shape);
    return tf.tensor(this.rng.normal(tf.util.sizeFromShape(shape), std), shape, 'float32');
  }

  zeros(shape: number[]): tf.Tensor {
    return tf.zeros(shape);
  }

  ones(shape: number[]): tf.Tensor {
    return tf.ones(shape);
  }
}
