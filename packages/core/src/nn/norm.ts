import * as tf from '@tensorflow/tfjs-core';
import { layerNorm, rmsNorm } from '../ops/index.js';
import { Module } from './module.js';

function checkLastDim(layer: string, x: tf.Tensor, dim: number): void {
  const last = x.shape[x.shape.length - 1];
  if (last !== dim)
    throw new Error(`${layer}: input last dim is ${last}, expected ${dim} (shape [${x.shape}])`);
}

/** LLaMA RMSNorm: HF name `weight` [dim], initialised to ones. */
export class RMSNorm extends Module {
  readonly weight: tf.Variable<tf.Rank.R1>;

  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.param('weight', tf.ones([dim]) as tf.Tensor1D);
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkLastDim('RMSNorm', x, this.dim);
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** torch.nn.LayerNorm over the last axis: HF names `weight` (ones) and `bias` (zeros), [dim]. */
export class LayerNorm extends Module {
  readonly weight: tf.Variable<tf.Rank.R1>;
  readonly bias: tf.Variable<tf.Rank.R1>;

  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', tf.ones([dim]) as tf.Tensor1D);
    this.bias = this.param('bias', tf.zeros([dim]) as tf.Tensor1D);
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkLastDim('LayerNorm', x, this.dim);
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
