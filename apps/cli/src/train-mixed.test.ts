// Mixture-of-modality training (LaVIN) with the shipped lavin-mm-adapter recipe: its data.train lists image-text
// and text-only records; the batches `vistune train` builds mix both, and a short run uses both and learns.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import {
  dataFileList,
  disposeMultimodalBatch,
  InstructionDataLoader,
  initBackend,
  loadRecipe,
  type Recipe,
} from '@vistune/core';
import { generateWorld, writeWorldTokenizer } from '@vistune/demo-world';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVistuneRegistry } from './api/registry.js';
import { defaultRecipesDir, writeTextOnly } from './bench/connectors.js';
import { demoPreprocessorConfig } from './demo/index.js';
import { modelForRecipe, slotsPerModality, stageData } from './training.js';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);
const RECIPE = join(defaultRecipesDir(), 'lavin-mm-adapter.yaml');

let dir = '';
let recipePath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-mixed-'));
  const world = join(dir, 'world');
  // The recipe's world at its sizes (64 px images, 302 tokens), few scenes: 32 image-text records.
  await generateWorld({ outDir: world, seed: 5, imageSize: 64, counts: { train: 8, val: 0, test: 0 } });
  await writeWorldTokenizer(join(world, 'tokenizer'));
  await writeFile(join(world, 'preprocessor_config.json'), JSON.stringify(demoPreprocessorConfig(64)));
  await writeTextOnly(world);
  // The shipped recipe's model and data files (re-rooted here), with a few-step stage.
  const shipped = await loadRecipe(RECIPE);
  if (shipped.model.kind !== 'config') throw new Error(`${RECIPE}: expected an inline model config`);
  const [stage] = shipped.stages as [Recipe['stages'][number]];
  const recipe = {
    model: shipped.model.config,
    data: {
      train: dataFileList(shipped.data.train).map((p) => relative(dirname(RECIPE), p)),
      images: './world',
      template: shipped.data.template,
      systemPrompt: shipped.data.systemPrompt,
      maxLength: shipped.data.maxLength,
      batchSize: 8,
    },
    stages: [{ name: stage.name, train: stage.train, lr: 1e-2, steps: 8 }],
    optimizer: { weightDecay: 0, clip: 1 },
    checkpoint: { every: 0 },
    seed: 1,
    output: './run',
  };
  recipePath = join(dir, 'lavin-mixed.json');
  await writeFile(recipePath, JSON.stringify(recipe, null, 2));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('mixture-of-modality training (lavin-mm-adapter recipe)', () => {
  it('the recipe lists the image-text and the text-only records of the world', async () => {
    const shipped = await loadRecipe(RECIPE);
    expect(dataFileList(shipped.data.train).map((p) => relative(dirname(RECIPE), p))).toEqual([
      join('world', 'train.json'),
      join('world', 'train-text.json'),
    ]);
  });

  it("vistune train's batches mix text-only and image-text samples", async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const recipe = await loadRecipe(recipePath);
    const registry = await createVistuneRegistry({ from: dir });
    const vlm = await modelForRecipe(recipe, registry, dir);
    try {
      // The image-text file comes first here; the slot count is measured on its first image.
      const slots = await slotsPerModality(vlm, recipe, dir);
      expect(slots.image).toBe(16);
      // Listed first, the text-only file has no image to measure: the next file's first image is used.
      const textFirst = {
        ...recipe,
        data: { ...recipe.data, train: dataFileList(recipe.data.train).reverse() },
      };
      expect(await slotsPerModality(vlm, textFirst, dir)).toEqual({ image: 16 });
      const loader = await stageData(recipe, vlm, dir, slots)(recipe.stages[0] as Recipe['stages'][number]);
      let mixed = 0;
      for (let b = await loader.next(); b; b = await loader.next()) {
        const perSample = (b.media?.image ?? []).map((items) => items.length);
        if (perSample.includes(0) && perSample.some((n) => n > 0)) mixed++;
        disposeMultimodalBatch(b);
      }
      if (loader instanceof InstructionDataLoader) loader.dispose(); // the next epoch's prefetched media
      expect(mixed).toBeGreaterThan(0);
      // data.lengthBuckets reaches the loader `vistune train` builds.
      const bucketed = { ...recipe, data: { ...recipe.data, lengthBuckets: [30] } };
      const bucketLoader = await stageData(
        bucketed,
        vlm,
        dir,
        slots,
      )(recipe.stages[0] as Recipe['stages'][number]);
      expect(bucketLoader.state()).toMatchObject({ lengthBuckets: '30' });
      if (bucketLoader instanceof InstructionDataLoader) bucketLoader.dispose();
    } finally {
      vlm.dispose();
    }
  });

  it('a short run uses both kinds (data statistics) and its loss is finite and decreases', async () => {
    const { stdout } = await run(process.execPath, [bin, 'train', '--config', recipePath, '--json'], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ status: 'completed', step: 8 });
    // 32 image-text records and the same 32 without their image: all kept, 32 images among 64 samples.
    expect(summary.data.instruct).toMatchObject({
      read: 64,
      kept: 64,
      skipped: { total: 0 },
      media: { image: 32 },
    });
    const losses = (await readFile(join(dir, 'run', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses).toHaveLength(8);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-2))).toBeLessThan(mean(losses.slice(0, 2)));
  });
});
