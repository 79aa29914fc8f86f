import * as tf from '@tensorflow/tfjs-core';
import { Optimizer, type OptimizerOptions } from './optimizer.js';

export interface SGDOptions extends OptimizerOptions {
  /** Default 0 (plain SGD, no buffer). */
  momentum?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD without dampening: d = g + wd·p (coupled L2), buf = μ·buf + d (buf starts at d),
 * d = nesterov ? d + μ·buf : buf, p ← p − lr·d.
 */
export class SGD extends Optimizer {
  protected readonly slotNames: readonly string[];
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(params: readonly [string, tf.Variable][], opts: SGDOptions) {
    super(params, opts);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && this.momentum <= 0) throw new Error('SGD: nesterov needs momentum > 0');
    this.slotNames = this.momentum > 0 ? ['momentum_buffer'] : [];
  }

  protected update(
    param: tf.Variable,
    grad: tf.Tensor,
    slots: readonly tf.Variable[],
    lr: number,
    weightDecay: number,
  ): void {
    let d = weightDecay === 0 ? grad : tf.add(grad, tf.mul(param, weightDecay));
    if (this.momentum > 0) {
      // A zero buffer makes the first step buf = d, torch's clone(d) start.
      const buf = tf.add(tf.mul(slots[0], this.momentum), d);
      slots[0].assign(buf);
      d = this.nesterov ? tf.add(d, tf.mul(buf, this.momentum)) : buf;
    }
    param.assign(tf.sub(param, tf.mul(d, lr)));
  }
}
