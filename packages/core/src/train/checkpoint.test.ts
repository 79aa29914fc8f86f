// Checkpoint folders: round trip, atomic write (a failure midway leaves no folder and keeps the older ones),
// keep-last-K pruning, 'latest', and the loss-curve plot.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import {
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  resolveCheckpoint,
  type StepRecord,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { lossCurveSvg, niceTicks } from './plot.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'vistune-ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function state(step: number): TrainerState {
  return {
    format: 'vistune-trainer-state-1',
    stages: ['align'],
    stageSteps: [10],
    stage: 0,
    stageStep: step,
    step,
    microBatches: 2 * step,
    epoch: step / 5,
    data: { epoch: 0, index: step, seed: 3 },
    rng: { seed: 42, loraDropoutCalls: 7 * step },
    trainedParameters: ['w'],
    untrainedFingerprint: 1.5,
    metrics: [
      {
        step,
        stage: 'align',
        stageIndex: 0,
        stageStep: step,
        epoch: 0,
        loss: 2.5,
        lr: 1e-3,
        gradNorm: 0.5,
        tokens: 10,
      },
    ],
  };
}

async function save(
  dir: string,
  step: number,
  keep: number | null = null,
  optimizer?: Map<string, tf.Tensor>,
) {
  const w = tf.tensor2d([step, 2, 3, 4], [2, 2]);
  const opt =
    optimizer ??
    new Map<string, tf.Tensor>([
      ['w.exp_avg', tf.fill([2, 2], step / 10)],
      ['step', tf.scalar(step, 'int32')],
    ]);
  try {
    return await saveCheckpoint(
      dir,
      { state: state(step), weights: new Map([['w', w]]), optimizer: opt },
      { keep },
    );
  } finally {
    tf.dispose([w, ...opt.values()]);
  }
}

describe('checkpoints', () => {
  it('round-trip weights, optimizer state and trainer state', async () => {
    const dir = join(root, 'roundtrip');
    const path = await save(dir, 3);
    expect(path).toBe(join(dir, 'checkpoint-3'));
    expect((await readdir(path)).sort()).toEqual([
      'optimizer.safetensors',
      'trainable_weights.safetensors',
      'trainer_state.json',
    ]);
    const loaded = await loadCheckpoint(path);
    expect(loaded.state).toEqual(state(3));
    expect(loaded.weights!.get('w')!.arraySync()).toEqual([
      [3, 2],
      [3, 4],
    ]);
    expect(loaded.optimizer!.get('w.exp_avg')!.dataSync()[0]).toBeCloseTo(0.3, 6);
    expect(loaded.optimizer!.get('step')!.dtype).toBe('int32');
    tf.dispose([...loaded.weights!.values(), ...loaded.optimizer!.values()]);
  });

  it('keeps the newest K, resolves latest, ignores incomplete folders', async () => {
    const dir = join(root, 'prune');
    for (const step of [2, 4, 6, 8]) await save(dir, step, 2);
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([6, 8]);
    await mkdir(join(dir, 'checkpoint-10')); // no trainer_state.json: not complete
    await writeFile(join(dir, 'checkpoint-10', 'trainable_weights.safetensors'), 'partial');
    expect(await resolveCheckpoint(dir, 'latest')).toBe(join(dir, 'checkpoint-8'));
    await expect(resolveCheckpoint(dir, join(dir, 'checkpoint-10'))).rejects.toThrow(
      /not a complete checkpoint/,
    );
    await expect(resolveCheckpoint(join(root, 'empty'), 'latest')).rejects.toThrow(
      /no complete checkpoint-<step> folder/,
    );
    expect(await pruneCheckpoints(dir, 1)).toEqual([join(dir, 'checkpoint-6')]);
  });

  it('orders checkpoints by step number, not folder name: latest of 9 and 10 is 10, keep 1 deletes 9', async () => {
    const dir = join(root, 'numeric');
    for (const step of [10, 9]) await save(dir, step);
    expect((await readdir(dir)).sort()).toEqual(['checkpoint-10', 'checkpoint-9']); // name order puts 9 last
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([9, 10]);
    expect(await resolveCheckpoint(dir, 'latest')).toBe(join(dir, 'checkpoint-10'));
    expect(await pruneCheckpoints(dir, 1)).toEqual([join(dir, 'checkpoint-9')]);
    expect(await readdir(dir)).toEqual(['checkpoint-10']);
  });

  it('pruning never deletes the checkpoint just written, even beside a higher-numbered one', async () => {
    const dir = join(root, 'protect');
    await save(dir, 20); // e.g. left by a branch of the run that was resumed from an earlier checkpoint
    await save(dir, 3);
    const path = await save(dir, 4, 1);
    expect(path).toBe(join(dir, 'checkpoint-4'));
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([4]);
  });

  it('a write that fails midway leaves no folder, no temp files, and the previous checkpoints untouched', async () => {
    const dir = join(root, 'crash');
    await save(dir, 2, 1);
    const disposed = tf.zeros([2, 2]);
    disposed.dispose();
    // The weights file is written first; the optimizer file then fails on the disposed tensor.
    const bad = new Map<string, tf.Tensor>([['w.exp_avg', disposed]]);
    await expect(save(dir, 4, 1, bad)).rejects.toThrow(/has been disposed/);
    expect(await readdir(dir)).toEqual(['checkpoint-2']);
    const loaded = await loadCheckpoint(join(dir, 'checkpoint-2'));
    expect(loaded.state.step).toBe(2);
    expect(loaded.weights!.get('w')!.dataSync()[0]).toBe(2);
    tf.dispose([...loaded.weights!.values(), ...loaded.optimizer!.values()]);
  });

  it('writing a step that exists replaces it whole', async () => {
    const dir = join(root, 'replace');
    await save(dir, 5);
    const w = tf.tensor2d([9, 9, 9, 9], [2, 2]);
    await saveCheckpoint(dir, { state: { ...state(5), epoch: 9 }, weights: new Map([['w', w]]) });
    w.dispose();
    const loaded = await loadCheckpoint(join(dir, 'checkpoint-5'));
    expect(loaded.state.epoch).toBe(9);
    expect(loaded.optimizer).toBeNull(); // the old folder's optimizer file did not survive
    expect(loaded.weights!.get('w')!.dataSync()[0]).toBe(9);
    expect(await readdir(dir)).toEqual(['checkpoint-5']);
    tf.dispose([...loaded.weights!.values()]);
  });
});

describe('loss curve', () => {
  it('niceTicks gives round steps covering the range', () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(1.93, 2.61)).toEqual([2, 2.2, 2.4, 2.6]); // range/5 = 0.136 → step 0.2
    expect(niceTicks(0.5, 1)).toEqual([0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });

  it('draws one polyline per stage with a point per step, inside the plot area', () => {
    const records: StepRecord[] = Array.from({ length: 12 }, (_, i) => ({
      step: i + 1,
      stage: i < 5 ? 'align' : 'instruct <lora>',
      stageIndex: i < 5 ? 0 : 1,
      stageStep: i < 5 ? i + 1 : i - 4,
      epoch: 0,
      loss: 4 / (i + 1),
      lr: 1e-3,
      gradNorm: 1,
      tokens: 8,
    }));
    const svg = lossCurveSvg(records);
    const lines = [...svg.matchAll(/<polyline data-stage="([^"]*)"[^>]* points="([^"]*)"/g)];
    expect(lines.map((m) => m[1])).toEqual(['align', 'instruct &#60;lora&#62;']);
    const points = lines.flatMap((m) => m[2].split(' ').map((p) => p.split(',').map(Number)));
    expect(points).toHaveLength(12);
    for (const [x, y] of points) {
      expect(x).toBeGreaterThanOrEqual(64);
      expect(x).toBeLessThanOrEqual(800 - 24);
      expect(y).toBeGreaterThanOrEqual(40);
      expect(y).toBeLessThanOrEqual(400 - 48);
    }
    // SVG y grows downward: the high first loss sits near the top, the low last one near the bottom.
    expect(points[0][1]).toBeCloseTo(40 + (0.05 / 1.1) * (400 - 40 - 48), 0);
    expect(points[11][1]).toBeCloseTo(400 - 48 - (0.05 / 1.1) * (400 - 40 - 48), 0);
    expect(lossCurveSvg([])).toContain('no steps recorded');
  });
});
