#!/usr/bin/env node
// Where a demo-sized training step's time goes, per tfjs kernel: wraps the engine's kernel dispatch (a private
// tfjs API, fine for a measuring tool) and times every call over 10 forward + backward passes (no optimizer) of
// tools/data-parallel-bench.mjs's model on one synthetic batch of 16 × 48 tokens.
// "custom" rows are customGrad wrappers: their time includes the kernels inside them, which are listed too.
// usage: node tools/kernel-profile.mjs   (needs `pnpm build`)
import * as core from '../packages/core/dist/index.js';
import { syntheticBatch, trainableBenchModel } from './data-parallel-bench.mjs';

await core.initBackend({ backend: 'wasm', quiet: true });
const { tf } = core;
const { model, params } = await trainableBenchModel();
const batch = syntheticBatch(16);
const step = async () => {
  const { grads } = await core.computeGradientsAsync(
    () => model.forward(batch, { logits: false }).loss,
    params,
  );
  tf.dispose([...grads.values()]);
};
for (let i = 0; i < 5; i++) await step();
const agg = new Map();
const eng = tf.engine();
const runKernelFunc = eng.runKernelFunc.bind(eng);
eng.runKernelFunc = (kernelParams) => {
  const t = performance.now();
  const r = runKernelFunc(kernelParams);
  const dt = performance.now() - t;
  const name = kernelParams.kernelName ?? 'custom';
  const e = agg.get(name) ?? [0, 0];
  e[0] += dt;
  e[1]++;
  agg.set(name, e);
  return r;
};
const N = 10;
const t0 = performance.now();
for (let i = 0; i < N; i++) await step();
const total = (performance.now() - t0) / N;
let sum = 0;
for (const [, [ms]] of agg) sum += ms;
console.log(
  'step ms',
  total.toFixed(1),
  'in kernels (nested counted twice)',
  (sum / N).toFixed(1),
  'kernel calls/step',
  [...agg.values()].reduce((a, [, n]) => a + n, 0) / N,
);
for (const [k, [ms, n]] of [...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 25))
  console.log(k.padEnd(28), (ms / N).toFixed(2).padStart(7), 'ms', String(n / N).padStart(5), 'calls');
