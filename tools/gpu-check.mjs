#!/usr/bin/env node
// GPU path check (docs/gpu.md): which backend vistune's loader starts, matmul GFLOP/s, a train step and
// greedy decode of a config's language model, and core's LLaVA bench, per backend. Every GPU read is
// awaited (data()), since tfjs-backend-webgpu cannot read synchronously in Node (it needs OffscreenCanvas).
// Run from a kit built by tools/gpu-check-kit.sh, or in the repo once the optional packages resolve.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { register as registerAdapters } from '../packages/adapters/dist/index.js';
import {
  AdamW,
  benchLlava,
  createRegistry,
  crossEntropy,
  initBackend,
  LlamaForCausalLM,
  matmul,
  parseLlamaConfig,
  register as registerCore,
  tf,
} from '../packages/core/dist/index.js';
import { register as registerEncoders } from '../packages/encoders/dist/index.js';

const USAGE = `usage: node gpu-check.mjs --config <llava config.json> [--backends webgpu,wasm]
       [--sizes 1024,2048,4096] [--steps 10] [--out result.json]`;

const { values: flags } = parseArgs({
  options: {
    config: { type: 'string' },
    backends: { type: 'string', default: 'webgpu,wasm' },
    sizes: { type: 'string', default: '1024,2048,4096' },
    steps: { type: 'string', default: '10' },
    out: { type: 'string' },
  },
});
if (!flags.config) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const configJson = JSON.parse(readFileSync(flags.config, 'utf8'));
const sizes = flags.sizes.split(',').map(Number);
const steps = Number(flags.steps);
const log = (m) => process.stderr.write(`[gpu-check] ${m}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const firstLine = (e) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

const result = { date: new Date().toISOString(), node: process.version, config: flags.config, backends: [] };
const save = () => {
  if (flags.out) writeFileSync(flags.out, `${JSON.stringify(result, null, 2)}\n`);
};

/**
 * Products queued back to back, then one read of the last product's first row, which waits for all of
 * them (one queue) and is checked against the same row computed here in float64: a GPU that dropped the
 * work (an invalid pipeline) fails the check instead of reporting an impossible rate.
 */
async function benchMatmul(n, reps) {
  const [a, b] = [tf.randomNormal([n, n], 0, 1, 'float32', 1), tf.randomNormal([n, n], 0, 1, 'float32', 2)];
  const [aValues, bValues] = [await a.data(), await b.data()];
  const expected = new Float64Array(n);
  for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) expected[j] += aValues[k] * bValues[k * n + j];
  let worst = 0;
  const run = async (count) => {
    const t0 = performance.now();
    const products = Array.from({ length: count }, () => matmul(a, b));
    const row = tf.slice(products[count - 1], [0, 0], [1, n]);
    const got = await row.data();
    const ms = performance.now() - t0;
    tf.dispose([...products, row]);
    for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(got[j] - expected[j]));
    return ms;
  };
  await run(1); // shader compilation / XNNPACK setup
  const ms = [];
  for (let i = 0; i < 3; i++) ms.push((await run(reps)) / reps);
  tf.dispose([a, b]);
  // Entries have standard deviation sqrt(n); float32 accumulation errs by far less than 1e-3 of that.
  if (!(worst <= 1e-3 * Math.sqrt(n)))
    throw new Error(`matmul ${n}: first row differs from the float64 reference by ${worst}`);
  const best = median(ms);
  return { n, reps, ms: Number(best.toFixed(3)), gflops: Number(((2 * n ** 3) / best / 1e6).toFixed(1)) };
}

/** The config's language model: AdamW train steps on random ids, each ending with an awaited loss read. */
async function benchLmTrain(textConfig, batch, seq) {
  const llm = new LlamaForCausalLM(parseLlamaConfig(textConfig, `${flags.config} text_config`), { seed: 0 });
  const params = llm.namedParameters();
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const V = llm.vocabSize;
  const rows = Int32Array.from({ length: batch * (seq + 1) }, (_, i) => 3 + ((i * 7919) % (V - 3)));
  const all = tf.tensor2d(rows, [batch, seq + 1], 'int32');
  const ids = tf.slice(all, [0, 0], [batch, seq]);
  const labels = tf.reshape(tf.slice(all, [0, 1], [batch, seq]), [batch * seq]);
  const lossFn = () => {
    const logits = llm.lmHead(llm.forward({ inputsEmbeds: llm.embed(ids) }).hidden);
    return crossEntropy(tf.reshape(logits, [batch * seq, V]), labels);
  };
  const times = [];
  const losses = [];
  for (let s = 0; s < steps + 2; s++) {
    const t0 = performance.now();
    const { value, grads } = tf.variableGrads(
      lossFn,
      params.map(([, v]) => v),
    );
    optimizer.step(new Map(params.map(([name, v]) => [name, grads[v.name]])));
    tf.dispose(Object.values(grads));
    losses.push((await value.data())[0]);
    value.dispose();
    if (s >= 2) times.push(performance.now() - t0);
  }
  optimizer.dispose();
  tf.dispose([all, ids, labels]);
  const perStep = median(times);
  const report = {
    batch,
    seq,
    steps,
    median_ms_per_step: Number(perStep.toFixed(2)),
    tokens_per_s: Number(((batch * seq * 1000) / perStep).toFixed(1)),
    loss_first: Number(losses[0].toFixed(4)),
    loss_last: Number(losses[losses.length - 1].toFixed(4)),
  };
  return { llm, report };
}

/** Greedy decode with the KV cache, batch 1, each token read with an awaited argMax. */
async function benchLmDecode(llm, promptLength, newTokens) {
  const run = async () => {
    const cache = llm.createCache(1);
    let ids = tf.tensor2d(
      Int32Array.from({ length: promptLength }, (_, i) => 3 + i),
      [1, promptLength],
      'int32',
    );
    const t0 = performance.now();
    let tPrefill = 0;
    for (let i = 0; i <= newTokens; i++) {
      const next = tf.tidy(() => {
        const { hidden } = llm.forward({ inputsEmbeds: llm.embed(ids), cache });
        const T = hidden.shape[1];
        return tf.argMax(llm.lmHead(tf.slice(hidden, [0, T - 1, 0], [1, 1, -1])), -1);
      });
      const [token] = await next.data();
      tf.dispose([ids, next]);
      ids = tf.tensor2d([token], [1, 1], 'int32');
      if (i === 0) tPrefill = performance.now();
    }
    ids.dispose();
    cache.dispose?.();
    return { prefill: tPrefill - t0, decode: performance.now() - tPrefill };
  };
  await run();
  const runs = [await run(), await run(), await run()];
  return {
    prompt_tokens: promptLength,
    new_tokens: newTokens,
    prefill_ms: Number(median(runs.map((r) => r.prefill)).toFixed(2)),
    decode_tokens_per_s: Number(((newTokens * 1000) / median(runs.map((r) => r.decode))).toFixed(1)),
  };
}

async function section(entry, name, fn) {
  log(`${entry.backend}: ${name}`);
  try {
    entry[name] = await fn();
  } catch (e) {
    entry[name] = { error: firstLine(e) };
    log(`${entry.backend}: ${name} failed: ${firstLine(e)}`);
  }
  save();
}

const registry = createRegistry();
registerCore(registry.withOrigin('@vistune/core'));
registerEncoders(registry.withOrigin('@vistune/encoders'));
registerAdapters(registry.withOrigin('@vistune/adapters'));
const bench = configJson.bench ?? { batch: 4, seq: 192, gen_prompt: 32, gen_new: 64 };

for (const backend of flags.backends.split(',')) {
  const entry = { backend };
  result.backends.push(entry);
  try {
    const info = await initBackend({ backend, quiet: true });
    entry.init = { provider: info.provider, gpu: info.gpu, detail: info.detail, skipped: info.skipped };
    log(`${backend}: ${info.provider} (${info.detail})`);
    save();
  } catch (e) {
    entry.init = { error: firstLine(e) };
    log(`${backend}: unavailable: ${firstLine(e)}`);
    save();
    continue;
  }
  const gpu = entry.init.gpu;
  const tensorsAtStart = tf.memory().numTensors;
  // n inputs need n + 1 storage buffers in one shader; WebGPU's default limit is 8 (providers.ts).
  await section(entry, 'add_n', async () => {
    const rows = [];
    for (const n of [7, 12, 40]) {
      const sum = tf.tidy(() => tf.addN(Array.from({ length: n }, (_, i) => tf.fill([4], i))));
      const got = (await sum.data())[0];
      sum.dispose();
      rows.push({ inputs: n, ok: got === (n * (n - 1)) / 2, got });
    }
    return rows;
  });
  entry.matmul = [];
  for (const n of sizes) {
    if (!gpu && n > 2048) continue; // ~3 s per 4096³ product on one wasm thread
    await section(entry, `matmul_${n}`, () => benchMatmul(n, gpu ? 20 : 3));
    entry.matmul.push(entry[`matmul_${n}`]);
    delete entry[`matmul_${n}`];
  }
  let llm;
  await section(entry, 'lm_train', async () => {
    const trained = await benchLmTrain(configJson.text_config, bench.batch, bench.seq);
    llm = trained.llm;
    return trained.report;
  });
  if (llm) {
    await section(entry, 'lm_decode', () => benchLmDecode(llm, bench.gen_prompt ?? 32, bench.gen_new ?? 64));
    llm.dispose();
  }
  await section(entry, 'llava_bench', () =>
    benchLlava(configJson, registry, { name: basename(flags.config, extname(flags.config)) }),
  );
  entry.tensors_left_by_check = tf.memory().numTensors - tensorsAtStart;
}
save();
process.stdout.write(`${JSON.stringify(result)}\n`);
