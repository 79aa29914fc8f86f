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

/** A native update into the result views (backend/native.ts installs @vistune/native's); null: the JS loop. */
export type NativeAdamW = (
  inputs: { param: Float32Array; grad: Float32Array; expAvg: Float32Array; expAvgSq: Float32Array },
  outputs: { paramOut: Float32Array; expAvgOut: Float32Array; expAvgSqOut: Float32Array },
  attrs: AdamWAttrs,
) => void;

let nativeAdamW: NativeAdamW | null = null;

/** Runs the kernel's update on `fn` (float32, vectorised) instead of the JS loop; null restores the loop. */
export function setNativeAdamW(fn: NativeAdamW | null): void {
  nativeAdamW = fn;
}

/** Whether the AdamW kernel runs a native update. */
export function nativeAdamWActive(): boolean {
  return nativeAdamW !== null;
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
  compute([p, g, m, v], [pOut, mOut, vOut], attrs) {
    const views = [p, g, m, v, pOut, mOut, vOut];
    if (nativeAdamW && views.every((a) => a instanceof Float32Array)) {
      const f32 = views as Float32Array[];
      nativeAdamW(
        { param: f32[0], grad: f32[1], expAvg: f32[2], expAvgSq: f32[3] },
        { paramOut: f32[4], expAvgOut: f32[5], expAvgSqOut: f32[6] },
        attrs,
      );
      return;
    }
    const { lr, beta1, beta2, eps, weightDecay, step } = attrs;
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
