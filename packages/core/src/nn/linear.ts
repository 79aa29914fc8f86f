import * as tf from '@tensorflow/tfjs-core';
import { linear } from '../ops/index.js';
import type { Initializer } from './init.js';
import { Module } from './module.js';

export interface LinearOptions {
  init: Initializer;
  /** Default true, as torch.nn.Linear. */
  bias?: boolean;
}

/**
 * A term added to a Linear's output, y = x Wᵀ + b + branch(x) (LoRA). Its modules become children of the
 * Linear, so their parameters are named `<linear>.<child>.*` (PEFT: `q_proj.lora_A.weight`).
 */
export interface LinearBranch {
  readonly modules: readonly (readonly [string, Module])[];
  /** x: [..., in] → [..., out]; `training` is the Linear's mode (dropout inside the branch). */
  forward(x: tf.Tensor, training: boolean): tf.Tensor;
}

/** torch.nn.Linear: y = x Wᵀ + b, with HF names `weight` [out, in] and `bias` [out]. */
export class Linear extends Module {
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1> | undefined;
  private attached: LinearBranch | undefined;

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
    if (!this.attached) return linear(x, this.weight, this.bias);
    return tf.add(linear(x, this.weight, this.bias), this.attached.forward(x, this.training));
  }

  /** The branch added to the output, if any. */
  get branch(): LinearBranch | undefined {
    return this.attached;
  }

  /** Adds a branch to the output and registers its modules as children; one branch at a time. */
  attachBranch(branch: LinearBranch): void {
    if (this.attached)
      throw new Error('Linear.attachBranch: this Linear already has a branch (detach it first)');
    for (const [name, m] of branch.modules) this.module(name, m);
    this.attached = branch;
  }

  /** Removes the branch and unregisters its modules (not disposed: the caller owns them); returns it. */
  detachBranch(): LinearBranch | undefined {
    const branch = this.attached;
    if (!branch) return undefined;
    for (const [name] of branch.modules) this.removeModule(name);
    this.attached = undefined;
    return branch;
  }
}
