// Exact resume: a run interrupted (maxSteps, abort signal) and resumed, or restarted from a periodic
// checkpoint, gives the same per-step losses and final weights as an uninterrupted run; a save that fails
// midway leaves the previous checkpoint intact and resumable.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { listCheckpoints } from './checkpoint.js';
import type { Recipe } from './recipe.js';
import { ToyBatchSource, tinyMultimodalModel, toyRecipe, toySamples } from './test-utils.js';
import { type RunOptions, Trainer, type TrainerOptions } from './trainer.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'vistune-resume-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Outcome {
  status: string;
  losses: number[];
  weights: Map<string, Float32Array>;
}

/** A fresh model and fresh data sources, as a new process would build them. */
async function train(
  recipe: Recipe,
  run: RunOptions = {},
  extra: Partial<TrainerOptions> = {},
): Promise<Outcome> {
  const model = tinyMultimodalModel(7);
  try {
    const result = await new Trainer({
      model,
      recipe,
      data: (_stage, i) => new ToyBatchSource(toySamples(10), recipe.data.batchSize, 10 + i),
      ...extra,
    }).run(run);
    return {
      status: result.status,
      losses: result.metrics.map((m) => m.loss),
      weights: new Map([...model.stateDict()].map(([n, p]) => [n, p.dataSync().slice() as Float32Array])),
    };
  } finally {
    model.dispose();
  }
}

function expectSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, w] of a) {
    const other = b.get(name)!;
    let diff = 0;
    for (let i = 0; i < w.length; i++) diff = Math.max(diff, Math.abs(w[i] - other[i]));
    expect(diff, name).toBe(0);
  }
}

describe('exact resume', () => {
  let reference: Outcome;
  let referenceRecipe: Recipe;

  beforeAll(async () => {
    referenceRecipe = toyRecipe(join(root, 'reference'));
    reference = await train(referenceRecipe);
    expect(reference.status).toBe('completed');
    expect(reference.losses).toHaveLength(7);
  }, 60_000);

  it('stopped by maxSteps inside the LoRA stage, then resumed from latest', async () => {
    const recipe = toyRecipe(join(root, 'max-steps'));
    const first = await train(recipe, { maxSteps: 5 });
    expect(first.status).toBe('stopped');
    expect(first.losses).toEqual(reference.losses.slice(0, 5));
    expect((await listCheckpoints(recipe.checkpoint.dir!)).map((c) => c.step)).toEqual([2, 4, 5]);
    const resumed = await train(recipe, { resumeFrom: 'latest' });
    expect(resumed.status).toBe('completed');
    expect(resumed.losses).toEqual(reference.losses);
    expectSameWeights(reference.weights, resumed.weights);
  }, 30_000);

  it('stopped by an abort signal at a stage boundary, then resumed', async () => {
    const recipe = toyRecipe(join(root, 'abort'));
    const controller = new AbortController();
    const first = await train(
      recipe,
      { signal: controller.signal },
      {
        onStep: (m) => {
          if (m.step === 3) controller.abort();
        },
      },
    );
    expect(first.status).toBe('stopped');
    expect(first.losses).toHaveLength(3);
    const resumed = await train(recipe, { resumeFrom: 'latest' });
    expect(resumed.losses).toEqual(reference.losses);
    expectSameWeights(reference.weights, resumed.weights);
  }, 30_000);

  it.each([2, 4])(
    'restarted from periodic checkpoint-%i of the finished run',
    async (step) => {
      const recipe = toyRecipe(join(root, `from-periodic-${step}`));
      const checkpoint = join(referenceRecipe.checkpoint.dir!, `checkpoint-${step}`);
      const resumed = await train(recipe, { resumeFrom: checkpoint });
      expect(resumed.losses).toEqual(reference.losses);
      expectSameWeights(reference.weights, resumed.weights);
    },
    30_000,
  );

  it('rejects a checkpoint from a different starting model or recipe', async () => {
    const recipe = toyRecipe(join(root, 'mismatch'));
    const checkpoint = join(referenceRecipe.checkpoint.dir!, 'checkpoint-2');
    const model = tinyMultimodalModel(8); // another seed: the untrained weights differ
    const data = (_s: unknown, i: number) => new ToyBatchSource(toySamples(10), 2, 10 + i);
    await expect(new Trainer({ model, recipe, data }).run({ resumeFrom: checkpoint })).rejects.toThrow(
      /parameters it did not train differ/,
    );
    const otherSeed = toyRecipe(join(root, 'mismatch'), { seed: 6 });
    await expect(
      new Trainer({ model, recipe: otherSeed, data }).run({ resumeFrom: checkpoint }),
    ).rejects.toThrow(/trained with seed 5, the recipe says 6/);
    model.dispose();
  });

  it('a save that fails midway leaves the previous checkpoint complete, and the run resumes from it', async () => {
    const recipe = toyRecipe(join(root, 'crash'));
    const crashed = await train(
      recipe,
      {},
      {
        saveModel: async (_model, dir) => {
          await writeFile(join(dir, 'config.json'), '{}');
          throw new Error('disk full (simulated)');
        },
      },
    ).catch((e: unknown) => e);
    expect((crashed as Error).message).toBe('disk full (simulated)');
    const dir = recipe.checkpoint.dir!;
    expect((await readdir(dir)).sort()).toEqual(['checkpoint-2', 'checkpoint-4', 'checkpoint-6']); // no temp left
    const resumed = await train(recipe, { resumeFrom: 'latest' });
    expect(resumed.status).toBe('completed');
    expect(resumed.losses).toEqual(reference.losses);
    expectSameWeights(reference.weights, resumed.weights);
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([2, 4, 6, 7]);
  }, 30_000);
});
