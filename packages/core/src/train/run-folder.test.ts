// Run-folder safety: a fresh run refuses a folder holding another run (or moves it aside with overwrite), the
// exclusive lock (live holder refused, dead holder taken over, released after success and failure), a resume
// that finishes a final save cut short, and the model-agnostic default save and checkpoint names.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { loadSafetensors, readSafetensorsHeader } from '../io/safetensors-read.js';
import type { Recipe } from './recipe.js';
import { RUN_LOCK_FILE, RunLock } from './run-folder.js';
import { ToyBatchSource, tinyMultimodalModel, toyRecipe, toySamples } from './test-utils.js';
import { type RunOptions, Trainer, type TrainerEvent, type TrainerOptions } from './trainer.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'vistune-run-folder-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** One short projector stage with a checkpoint every step: a complete run in well under a second. */
function shortRecipe(output: string): Recipe {
  return toyRecipe(output, {
    stages: [{ name: 'align', train: ['modalities.image.adapter.*'], lr: 1e-2, steps: 2 }],
    checkpoint: { every: 1, keep: null },
  });
}

async function train(
  recipe: Recipe,
  run: RunOptions = {},
  extra: Partial<TrainerOptions> = {},
): Promise<{ events: TrainerEvent[]; result: Awaited<ReturnType<Trainer['run']>> }> {
  const model = extra.model ?? tinyMultimodalModel(3);
  const events: TrainerEvent[] = [];
  try {
    const result = await new Trainer({
      model,
      recipe,
      data: (_s, i) => new ToyBatchSource(toySamples(6), 2, i),
      onEvent: (e) => events.push(e),
      ...extra,
    }).run(run);
    return { events, result };
  } finally {
    model.dispose();
  }
}

const warnings = (events: TrainerEvent[]) => events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));

describe('a fresh run into a used folder', () => {
  it('refuses, naming the earlier files, and leaves them untouched', async () => {
    const output = join(root, 'used');
    await train(shortRecipe(output));
    const metricsBefore = await readFile(join(output, 'metrics.jsonl'), 'utf8');
    const entriesBefore = (await readdir(output)).sort();
    const error = await train(shortRecipe(output)).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      new RegExp(
        `run folder ${output} already holds a run \\(metrics\\.jsonl, loss\\.html, model, checkpoints\\): resume it with resumeFrom 'latest'.*overwrite`,
      ),
    );
    expect(await readFile(join(output, 'metrics.jsonl'), 'utf8')).toBe(metricsBefore);
    expect((await readdir(output)).sort()).toEqual(entriesBefore);
    expect(entriesBefore).not.toContain(RUN_LOCK_FILE); // released after the first run and the refused one
  }, 30_000);

  it('with overwrite moves the earlier run aside (nothing deleted) and says where', async () => {
    const output = join(root, 'overwrite');
    await train(shortRecipe(output));
    const oldMetrics = await readFile(join(output, 'metrics.jsonl'), 'utf8');
    const { events, result } = await train(
      shortRecipe(output),
      { overwrite: true },
      { model: tinyMultimodalModel(4) },
    );
    expect(result.status).toBe('completed');
    const [message] = warnings(events);
    expect(message).toMatch(/overwrite: moved the earlier run's files aside \(nothing deleted\)/);
    const aside = (await readdir(output)).filter((n) => n.startsWith('previous-run-'));
    expect(aside).toHaveLength(1);
    expect(message).toContain(join(output, aside[0], 'metrics.jsonl'));
    expect(await readFile(join(output, aside[0], 'metrics.jsonl'), 'utf8')).toBe(oldMetrics);
    expect((await readdir(join(output, aside[0], 'checkpoints'))).sort()).toEqual([
      'checkpoint-1',
      'checkpoint-2',
    ]);
    // The new run's files are its own: another model seed gives other losses.
    expect(await readFile(join(output, 'metrics.jsonl'), 'utf8')).not.toBe(oldMetrics);
    await expect(train(shortRecipe(output), { overwrite: true, resumeFrom: 'latest' })).rejects.toThrow(
      /overwrite and resumeFrom 'latest' contradict each other/,
    );
  }, 30_000);
});

describe('the run lock', () => {
  it('refuses a second run while the first holds the folder, naming the holder', async () => {
    const output = join(root, 'locked');
    const lock = await RunLock.acquire(output, () => undefined);
    const error = await train(shortRecipe(output)).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      new RegExp(
        `run folder ${output} is in use by pid ${process.pid} on host ${hostname()} \\(started .*\\) \\(lock file .*${RUN_LOCK_FILE}\\)`,
      ),
    );
    await lock.release();
    const { result } = await train(shortRecipe(output));
    expect(result.status).toBe('completed');
    expect(await readdir(output)).not.toContain(RUN_LOCK_FILE);
  }, 30_000);

  it('takes over a lock whose holder is dead, with a warning; refuses one held on another host', async () => {
    const output = join(root, 'stale');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid is free
    const lockPath = join(output, RUN_LOCK_FILE);
    await mkdir(output, { recursive: true });
    const stale = { pid: dead, hostname: hostname(), startedAt: '2020-01-01T00:00:00.000Z', token: 'old' };
    await writeFile(lockPath, JSON.stringify(stale));
    const { events, result } = await train(shortRecipe(output));
    expect(result.status).toBe('completed');
    expect(warnings(events)[0]).toMatch(
      new RegExp(`took over the run lock ${lockPath}: pid ${dead} on host .* is no longer running`),
    );
    await writeFile(lockPath, JSON.stringify({ ...stale, hostname: 'elsewhere.example' }));
    await expect(train(shortRecipe(output), { resumeFrom: 'latest' })).rejects.toThrow(
      /is in use by pid \d+ on host elsewhere\.example .*another machine/,
    );
    await rm(lockPath);
  }, 30_000);

  it('is released when the run fails', async () => {
    const output = join(root, 'failing');
    const error = await train(
      shortRecipe(output),
      {},
      {
        saveModel: async () => {
          throw new Error('save failed (simulated)');
        },
      },
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('save failed (simulated)');
    expect(await readdir(output)).not.toContain(RUN_LOCK_FILE);
  }, 30_000);
});

describe('finishing a run cut short after its final checkpoint', () => {
  it("resume 'latest' publishes model/ and loss.html instead of reporting a completed run without them", async () => {
    const output = join(root, 'cut-short');
    const first = await train(shortRecipe(output));
    const weights = await readFile(join(output, 'model', 'model.safetensors'));
    // What a kill right after the final checkpoint leaves: no model/, no loss.html.
    await rm(join(output, 'model'), { recursive: true });
    await rm(join(output, 'loss.html'));
    const { events, result } = await train(shortRecipe(output), { resumeFrom: 'latest' });
    expect(result).toMatchObject({ status: 'completed', step: 2, modelDir: join(output, 'model') });
    expect(result.checkpoint).toBe(first.result.checkpoint);
    expect(await readFile(join(output, 'model', 'model.safetensors'))).toEqual(weights);
    expect(await readFile(join(output, 'loss.html'), 'utf8')).toContain('<svg');
    expect(events.some((e) => e.type === 'done')).toBe(true);
  }, 30_000);
});

describe('model-agnostic defaults', () => {
  it("saves through the model's save() and names LoRA files through its checkpointName()", async () => {
    const output = join(root, 'duck');
    const model = tinyMultimodalModel(5);
    const saved: string[] = [];
    const realSave = model.save.bind(model);
    Object.assign(model, {
      save: async (dir: string) => {
        saved.push(dir);
        await realSave(dir);
      },
      checkpointName: (param: string) => `renamed.${param}`,
    });
    const recipe = toyRecipe(output, { checkpoint: { every: 0, keep: null } });
    const { result } = await train(recipe, {}, { model });
    expect(result.status).toBe('completed');
    expect(saved).toHaveLength(1);
    const header = await readSafetensorsHeader(
      join(output, 'adapters', 'instruct', 'non_lora_trainables.safetensors'),
    );
    expect([...header.tensors.keys()].every((n) => n.startsWith('renamed.modalities.image.adapter.'))).toBe(
      true,
    );
    const adapter = await loadSafetensors(join(output, 'adapters', 'instruct', 'adapter_model.safetensors'));
    expect([...adapter.keys()].every((n) => n.includes('renamed.'))).toBe(true);
    for (const t of adapter.values()) t.dispose();
  }, 30_000);
});
