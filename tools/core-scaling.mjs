#!/usr/bin/env node
// The most two cores can give here: the same work on 1 thread, then on N threads at once (worker_threads),
// as aggregate throughput. Three kinds of work: the native AVX2/AVX-512 SGEMM (512³, what a training step mostly
// is), a scalar JS loop (no vector units, little memory), and independent demo-sized training steps
// (tools/data-parallel-bench.mjs's model, batch 16, forward + backward + AdamW, no communication at all: the
// ceiling of data-parallel training in one process). On a VM whose vCPUs share a physical core's
// FMA units or clock budget, the SGEMM ratio stays well under N while the scalar one reaches it: a ceiling for
// data-parallel training that no change to vistune can lift.
// usage: node tools/core-scaling.mjs [--threads 2] [--seconds 3] [--work sgemm,scalar,train]
//        [--processes] [--node-flags=--single-threaded-gc]   (needs `pnpm build`)
// --processes runs each replica as its own Node process (with --node-flags) instead of a worker thread.
import { fork } from 'node:child_process';
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

/** Training steps per second of an independent replica (its own model, its own synthetic batch). */
async function trainRate(seconds) {
  const core = await import('../packages/core/dist/index.js');
  const { trainableBenchModel, syntheticBatch } = await import('./data-parallel-bench.mjs');
  await core.initBackend({ backend: 'wasm', quiet: true });
  const { tf } = core;
  const { model, params } = await trainableBenchModel();
  const optimizer = new core.AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const batch = syntheticBatch(16);
  const step = async () => {
    const { grads } = await core.computeGradientsAsync(
      () => model.forward(batch, { logits: false }).loss,
      params,
    );
    optimizer.step(grads);
    tf.dispose([...grads.values()]);
  };
  for (let i = 0; i < 3; i++) await step();
  const start = performance.now();
  let runs = 0;
  while (performance.now() - start < seconds * 1000) {
    await step();
    runs++;
  }
  return runs / ((performance.now() - start) / 1000);
}

const work = { sgemm: sgemmRate, scalar: scalarRate, train: trainRate };
const LABELS = {
  sgemm: 'native SGEMM 512³ (GFLOP/s)',
  scalar: 'scalar JS loop (M iterations/s)',
  train: 'demo-sized train steps, batch 16 (steps/s)',
};

/** One replica's rate: a worker thread, or a child process started with `nodeFlags`. */
function replica(kind, seconds, processes, nodeFlags) {
  return new Promise((resolve, reject) => {
    const w = processes
      ? fork(new URL(import.meta.url), ['--child', kind, String(seconds)], { execArgv: nodeFlags })
      : new Worker(new URL(import.meta.url), { workerData: { kind, seconds } });
    w.once('message', (rate) => {
      if (processes) w.disconnect();
      resolve(rate);
    });
    w.once('error', reject);
  });
}

/** Aggregate rate of `threads` replicas running `kind` at once. */
async function together(kind, threads, seconds, processes, nodeFlags) {
  const rates = await Promise.all(
    Array.from({ length: threads }, () => replica(kind, seconds, processes, nodeFlags)),
  );
  return rates.reduce((s, r) => s + r, 0);
}

if (!isMainThread) {
  parentPort.postMessage(await work[workerData.kind](workerData.seconds));
} else if (process.argv[2] === '--child') {
  process.send(await work[process.argv[3]](Number(process.argv[4])));
} else {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '2' },
      seconds: { type: 'string', default: '3' },
      work: { type: 'string', default: 'sgemm,scalar,train' },
      processes: { type: 'boolean', default: false },
      'node-flags': { type: 'string', default: '' },
    },
  });
  const threads = Number(values.threads);
  const seconds = Number(values.seconds);
  const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
  const rows = [];
  for (const kind of values.work.split(',')) {
    // Interleaved: alone, together, alone again (the machine's speed drifts between seconds).
    const run = (n) => together(kind, n, seconds, values.processes, nodeFlags);
    const alone1 = await run(1);
    const both = await run(threads);
    const alone2 = await run(1);
    const alone = (alone1 + alone2) / 2;
    rows.push({
      work: LABELS[kind],
      oneThread: +alone.toFixed(2),
      [`${threads}Threads`]: +both.toFixed(2),
      speedup: +(both / alone).toFixed(2),
    });
  }
  const replicas = values.processes ? `processes ${nodeFlags.join(' ')}`.trim() : 'worker_threads';
  console.log(JSON.stringify({ cores: availableParallelism(), threads, replicas, rows }, null, 1));
}
