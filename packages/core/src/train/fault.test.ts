// Fault injection: a training process SIGKILLed at named points (between a step's log line and its checkpoint,
// inside checkpoint writes, between the final checkpoint and model/, after model/) and at seeded random
// moments, then resumed, until it completes. Each kill must leave the previous checkpoint complete and
// loadable, and the finished run must equal an uninterrupted one: the same model bytes, metrics.jsonl with
// each step once, loss.html, model/, no lock or temp files.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Rng } from '../nn/rng.js';
import { listCheckpoints, loadCheckpoint } from './checkpoint.js';
import { FAULT_ENV_VAR, type FaultPoint } from './fault.js';
import { RUN_LOCK_FILE } from './run-folder.js';
import { bundleForNode, testBundlePath } from './test-bundle.js';

const childScript = testBundlePath('vistune-fault', 'child.mjs');

/** Bundles fault-child.ts (Node cannot run TypeScript) with the package's dependencies left external. */
function bundleChild(): Promise<void> {
  return bundleForNode(childScript, { entry: 'src/train/fault-child.ts' });
}

interface ChildOutcome {
  signal: NodeJS.Signals | null;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the training process; `fault` names where it kills itself, `killAfterMs` kills it from here. */
function runChild(
  output: string,
  opts: { resume?: boolean; fault?: string; killAfterMs?: number } = {},
): Promise<ChildOutcome> {
  const env = { ...process.env, [FAULT_ENV_VAR]: opts.fault ?? '' };
  const args = [childScript, output, opts.resume ? 'resume' : 'fresh'];
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const timer =
    opts.killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let root: string;
let referenceModel: Buffer;
/** Wall time of the uninterrupted run here: random kills are spread over it, however loaded the machine. */
let referenceMs = 1200;
let referenceMetrics: number[];

/** Steps of metrics.jsonl, in order. */
async function loggedSteps(output: string): Promise<number[]> {
  const text = await readFile(join(output, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { step: number }).step);
}

/** The newest complete checkpoint loads (state, weights, optimizer) and is the one expected. */
async function expectLatestIntact(output: string, step: number | null): Promise<void> {
  const all = await listCheckpoints(join(output, 'checkpoints'));
  expect(all.at(-1)?.step ?? null).toBe(step);
  if (step === null) return;
  const loaded = await loadCheckpoint(all.at(-1)!.dir);
  expect(loaded.state.step).toBe(step);
  expect(loaded.state.metrics.map((m) => m.step)).toEqual(Array.from({ length: step }, (_, i) => i + 1));
  const tensors: tf.Tensor[] = [...(loaded.weights?.values() ?? []), ...(loaded.optimizer?.values() ?? [])];
  // Periodic checkpoints hold the trained weights; the final one is the model folder instead.
  if (loaded.weights) expect(loaded.weights.size).toBeGreaterThan(0);
  else expect(await readFile(join(loaded.dir, 'model.safetensors'))).toEqual(referenceModel);
  for (const t of tensors) t.dispose();
}

/** A finished run folder equal to the uninterrupted one. */
async function expectCompleteRun(output: string): Promise<void> {
  expect(await readFile(join(output, 'model', 'model.safetensors'))).toEqual(referenceModel);
  expect(await loggedSteps(output)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  const metrics = (await readFile(join(output, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  expect(metrics.map((l) => (JSON.parse(l) as { loss: number }).loss)).toEqual(referenceMetrics);
  expect(await readFile(join(output, 'loss.html'), 'utf8')).toContain('<svg');
  const entries = await readdir(output);
  expect(entries).not.toContain(RUN_LOCK_FILE);
  expect((await readdir(join(output, 'checkpoints'))).filter((n) => n.startsWith('.tmp'))).toEqual([]);
  expect(entries.filter((n) => n.includes('.tmp-') || n.includes('.old-'))).toEqual([]);
}

beforeAll(async () => {
  await initBackend({ backend: 'cpu' }); // the parent only reads checkpoints
  root = await mkdtemp(join(tmpdir(), 'vistune-fault-'));
  await bundleChild();
  const reference = join(root, 'reference');
  const started = performance.now();
  const run = await runChild(reference);
  referenceMs = performance.now() - started;
  expect(run.code, run.stderr).toBe(0);
  expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed', step: 7 });
  referenceModel = await readFile(join(reference, 'model', 'model.safetensors'));
  referenceMetrics = (await readFile(join(reference, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(dirname(childScript), { recursive: true, force: true });
});

describe('SIGKILL and resume', () => {
  it('killed at every named point in turn, each resume picks up from the newest intact checkpoint', async () => {
    const output = join(root, 'named');
    // [where the process dies, the newest complete checkpoint afterwards]; steps: 1-3 align, 4-7 instruct.
    const plan: [`${FaultPoint}${string}`, number | null][] = [
      ['step:metrics-appended@3', 2], // step 3 logged, its state not checkpointed
      ['checkpoint:weights-written@4', 2], // inside the write: a temp folder without trainer_state.json
      ['checkpoint:renamed@4', 4], // in place, older ones not pruned yet
      ['checkpoint:state-written@6', 4], // complete in its temp folder, not renamed
      ['checkpoint:model-written@7', 6], // inside the final checkpoint, model files written
      ['final:checkpoint-saved', 7], // final checkpoint in place, no model/
      ['final:model-published', 7], // model/ in place, loss.html not rewritten
    ];
    for (const [i, [fault, latest]] of plan.entries()) {
      const run = await runChild(output, { resume: i > 0, fault });
      expect(run.signal, `${fault}: ${run.stderr}`).toBe('SIGKILL');
      await expectLatestIntact(output, latest);
      if (i > 0) expect(run.stderr).toMatch(/warning: took over the run lock .* is no longer running/);
    }
    const done = await runChild(output, { resume: true });
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ status: 'completed', step: 7 });
    await expectCompleteRun(output);
  }, 60_000);

  it('killed at seeded random moments, resumed until done, ends identical to the uninterrupted run', async () => {
    const output = join(root, 'random');
    const rng = new Rng(2024);
    let previous: number | null = null;
    let kills = 0;
    for (let attempt = 0; attempt < 12; attempt++) {
      const resume = previous !== null;
      // From process start-up into the training and checkpoint writes: 25–100 % of an uninterrupted run's time.
      const killAfterMs = Math.floor(referenceMs * (0.25 + 0.75 * rng.nextFloat()));
      const run = await runChild(output, { resume, killAfterMs });
      const latest = (await listCheckpoints(join(output, 'checkpoints'))).at(-1)?.step ?? null;
      if (run.signal === null) {
        expect(run.code, run.stderr).toBe(0);
        break;
      }
      kills++;
      // Never loses a checkpoint it had; a kill before the first one restarts afresh.
      if (previous !== null) expect(latest).toBeGreaterThanOrEqual(previous);
      await expectLatestIntact(output, latest);
      if (latest === null) await rm(output, { recursive: true, force: true });
      previous = latest;
    }
    expect(kills).toBeGreaterThan(0);
    if (!(await readdir(output).catch(() => [] as string[])).includes('model')) {
      const hasCheckpoint = (await listCheckpoints(join(output, 'checkpoints')).catch(() => [])).length > 0;
      if (!hasCheckpoint) await rm(output, { recursive: true, force: true });
      expect((await runChild(output, { resume: hasCheckpoint })).code).toBe(0);
    }
    await expectCompleteRun(output);
  }, 60_000);
});
