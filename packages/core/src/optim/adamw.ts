import type * as tf from '@tensorflow/tfjs-core';
import { adamwUpdate } from '../ops/adamw.js';
import { Optimizer, type OptimizerOptions } from './optimizer.js';

export interface AdamWOptions extends OptimizerOptions {
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
}

/**
 * torch.optim.AdamW: p ← p·(1 − lr·wd), then the bias-corrected Adam step
 * p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps). weightDecay defaults to 0 (HF Trainer's default).
 */
export class AdamW extends Optimizer {
  protected readonly slotNames = ['exp_avg', 'exp_avg_sq'] as const;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(params: readonly [string, tf.Variable][], opts: AdamWOptions) {
    super(params, opts);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
  }

  protected update(
    param: tf.Variable,
    grad: tf.Tensor,
    [expAvg, expAvgSq]: readonly tf.Variable[],
    lr: number,
    weightDecay: number,
    step: number,
  ): void {
    // One fused pass on wasm/cpu (ops/adamw.ts): no parameter-sized temporaries besides the three results.
    const [p, m, v] = adamwUpdate(param, grad, expAvg, expAvgSq, {
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay,
      step,
    });
    expAvg.assign(m);
    expAvgSq.assign(v);
    param.assign(p);
  }
}
