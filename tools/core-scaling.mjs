#!/usr/bin/env node
// The most two cores can give here: the same work on 1 thread, then on N threads at once (worker_threads),
// as aggregate throughput. Two kinds of work: the native AVX2/AVX-512 SGEMM (512³, what a training step mostly
// is) and a scalar JS loop (no vector units, little memory). On a VM whose vCPUs share a physical core's
// FMA units or clock budget, the SGEMM ratio stays well under N while the scalar one reaches it: a ceiling for
// data-parallel training that no change to vistune can lift.
// usage: node tools/core-scaling.mjs [--threads 2] [--seconds 3]   (needs `pnpm build`: packages/native/dist)
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { loadNativeKernels } from '../packages/native/dist/index.js';

function sgemmRate(seconds) {
  const kernels = loadNativeKernels();
  if (!kernels) throw new Error('no native kernels: run pnpm build (packages/native)');
  const n = 512;
  const a = new Float32Array(n * n).fill(0.5);
  const b = new Float32Array(n * n).fill(0.25);
  const c = new Float32Array(n * n);
  for (let i = 0; i < 10; i++) kernels.sgemm({ a, b, c, m: n, n, k: n });
  const start = performance.now();
  let runs = 0;
  while (performance.now() - start < seconds * 1000) {
    kernels.sgemm({ a, b, c, m: n, n, k: n });
    runs++;
  }
  return (2 * n ** 3 * runs) / ((performance.now() - start) / 1000) / 1e9;
}

function scalarRate(seconds) {
  const start = performance.now();
  let x = 0;
  let runs = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 1e6; i++) x = (x * 1.0000001 + i) % 1e9;
    runs++;
  }
  return x >= 0 ? runs / ((performance.now() - start) / 1000) : 0;
}

const work = { sgemm: sgemmRate, scalar: scalarRate };

/** Aggregate rate of `threads` workers running `kind` at once. */
async function together(kind, threads, seconds) {
  const rates = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { kind, seconds } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  return rates.reduce((s, r) => s + r, 0);
}

if (!isMainThread) {
  parentPort.postMessage(work[workerData.kind](workerData.seconds));
} else {
  const { values } = parseArgs({
    options: { threads: { type: 'string', default: '2' }, seconds: { type: 'string', default: '3' } },
  });
  const threads = Number(values.threads);
  const seconds = Number(values.seconds);
  const rows = [];
  for (const kind of ['sgemm', 'scalar']) {
    // Interleaved: alone, together, alone again (the machine's speed drifts between seconds).
    const alone1 = await together(kind, 1, seconds);
    const both = await together(kind, threads, seconds);
    const alone2 = await together(kind, 1, seconds);
    const alone = (alone1 + alone2) / 2;
    rows.push({
      work: kind === 'sgemm' ? 'native SGEMM 512³ (GFLOP/s)' : 'scalar JS loop (M iterations/s)',
      oneThread: +alone.toFixed(1),
      [`${threads}Threads`]: +both.toFixed(1),
      speedup: +(both / alone).toFixed(2),
    });
  }
  console.log(JSON.stringify({ cores: availableParallelism(), threads, rows }, null, 1));
}
