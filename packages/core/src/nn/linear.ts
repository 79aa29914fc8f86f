import type * as tf from '@tensorflow/tfjs-core';
import { linear } from '../ops/index.js';
import type { Initializer } from './init.js';
import { Module } from './module.js';

export interface LinearOptions {
  init: Initializer;
  /** Default true, as torch.nn.Linear. */
  bias?: boolean;
}

/** torch.nn.Linear: y = x Wᵀ + b, with HF names `weight` [out, in] and `bias` [out]. */
export class Linear extends Module {
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1> | undefined;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions,
  ) {
    super();
    this.weight = this.param('weight', opts.init.normal([outFeatures, inFeatures]) as tf.Tensor2D);
    this.bias =
      (opts.bias ?? true) ? this.param('bias', opts.init.zeros([outFeatures]) as tf.Tensor1D) : undefined;
  }

  /** x: [..., in] → [..., out]. */
  forward(x: tf.Tensor): tf.Tensor {
    const inDim = x.shape[x.shape.length - 1];
    if (inDim !== this.inFeatures) {
      throw new Error(`Linear: input last dim is ${inDim}, expected ${this.inFeatures} (shape [${x.shape}])`);
    }
    return linear(x, this.weight, this.bias);
  }
}
