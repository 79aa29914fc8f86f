import { describe, expect, it } from 'vitest';
import type { AdamWArgs, NativeKernels } from './index.js';
import { randomArray, requireKernels, suiteTitle } from './test-support.js';

const title = suiteTitle('adamw');

const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05, step: 3 };

/** torch.optim.AdamW's step by its definition, in float64. */
function reference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array) {
  const { lr, beta1, beta2, eps, weightDecay, step } = HYPER;
  const out = { p: new Float64Array(p.length), m: new Float64Array(p.length), v: new Float64Array(p.length) };
  for (let i = 0; i < p.length; i++) {
    out.m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    out.v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    const mHat = out.m[i] / (1 - beta1 ** step);
    const vHat = out.v[i] / (1 - beta2 ** step);
    out.p[i] = p[i] * (1 - lr * weightDecay) - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
  return out;
}

function inputs(n: number) {
  const v = randomArray(n, 4).map(Math.abs);
  return { param: randomArray(n, 1), grad: randomArray(n, 2), expAvg: randomArray(n, 3), expAvgSq: v };
}

function run(kernels: NativeKernels, n: number, extra: Partial<AdamWArgs> = {}) {
  const ins = inputs(n);
  const outs = {
    paramOut: new Float32Array(n).fill(Number.NaN),
    expAvgOut: new Float32Array(n).fill(Number.NaN),
    expAvgSqOut: new Float32Array(n).fill(Number.NaN),
  };
  kernels.adamw({ ...ins, ...outs, ...HYPER, ...extra });
  return { ins, outs };
}

describe(title, () => {
  it.for([1, 15, 17, 1000, 70_001])('matches the float64 definition on every ISA (%i floats)', (n, ctx) => {
    const kernels = requireKernels(ctx);
    for (const isa of kernels.isas) {
      const { ins, outs } = run(kernels, n, { isa, threads: 2 });
      const want = reference(ins.param, ins.grad, ins.expAvg, ins.expAvgSq);
      let [dm, dv, dp] = [0, 0, 0];
      for (let i = 0; i < n; i++) {
        dm = Math.max(dm, Math.abs(outs.expAvgOut[i] - want.m[i]));
        dv = Math.max(dv, Math.abs(outs.expAvgSqOut[i] - want.v[i]));
        dp = Math.max(dp, Math.abs(outs.paramOut[i] - want.p[i]));
      }
      // float32 arithmetic keeps each result to a few ulps of values in [-1, 1] (NaN fails every bound)
      expect(
        [dm, dv, dp].every((d) => d < 2e-6),
        `${isa}: |Δm| ${dm}, |Δv| ${dv}, |Δp| ${dp}`,
      ).toBe(true);
    }
  });

  it('leaves its inputs untouched', (ctx) => {
    const { ins } = run(requireKernels(ctx), 100);
    expect(ins).toEqual(inputs(100));
  });

  it('refuses results that overlap an input, and arrays of other lengths, naming them', (ctx) => {
    const kernels = requireKernels(ctx);
    const ins = inputs(64);
    const out = new Float32Array(64);
    const hyper = { ...HYPER, paramOut: ins.param, expAvgOut: out, expAvgSqOut: new Float32Array(64) };
    expect(() => kernels.adamw({ ...ins, ...hyper })).toThrow(/pOut overlaps p/);
    expect(() =>
      kernels.adamw({
        ...ins,
        ...HYPER,
        paramOut: out,
        expAvgOut: new Float32Array(63),
        expAvgSqOut: new Float32Array(64),
      }),
    ).toThrow(/mOut has 63 floats, p has 64/);
    expect(() =>
      kernels.adamw({
        ...ins,
        ...HYPER,
        step: 0,
        paramOut: out,
        expAvgOut: new Float32Array(64),
        expAvgSqOut: new Float32Array(64),
      }),
    ).toThrow(/step must be an integer ≥ 1/);
  });
});
