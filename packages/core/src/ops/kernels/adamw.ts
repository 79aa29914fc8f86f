// One AdamW update of a parameter and its two moment buffers in a single pass: the tfjs composition allocates
// ~12 parameter-sized temporaries (1.4 GB for a 49k × 576 embedding), this allocates only the three results.
import type { JsKernel } from './js-kernel.js';

export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Update count from 1 (bias correction). */
  step: number;
}

/** torch.optim.AdamW: p·(1 − lr·wd) − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps), computed in float64 per element. */
export const adamwKernel: JsKernel<AdamWAttrs> = {
  name: 'VistuneAdamW',
  inputs: ['param', 'grad', 'expAvg', 'expAvgSq'],
  outputs: ([param]) => [
    { shape: param.shape, dtype: 'float32' },
    { shape: param.shape, dtype: 'float32' },
    { shape: param.shape, dtype: 'float32' },
  ],
  compute([p, g, m, v], [pOut, mOut, vOut], { lr, beta1, beta2, eps, weightDecay, step }) {
    const stepSize = lr / (1 - beta1 ** step);
    const sqrtBias2 = Math.sqrt(1 - beta2 ** step);
    const decay = 1 - lr * weightDecay;
    const [c1, c2] = [1 - beta1, 1 - beta2];
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = beta1 * m[i] + c1 * gi;
      const vi = beta2 * v[i] + c2 * gi * gi;
      mOut[i] = mi;
      vOut[i] = vi;
      pOut[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBias2 + eps);
    }
  },
};
