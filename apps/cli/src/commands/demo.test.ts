import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLlava, initBackend, tf } from '@vistune/core';
import { generateWorld, loadWorldSplit, writeWorldTokenizer } from '@vistune/demo-world';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVistuneRegistry } from '../api/registry.js';
import {
  cachedImageLoader,
  demoLlavaConfig,
  demoPlan,
  demoPreprocessorConfig,
  evalPrompts,
  generateAnswers,
  type PixelProcessor,
  pretrainVisionTower,
} from '../demo/index.js';

import { overridePlan } from './demo.js';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

describe('overridePlan (--plan)', () => {
  it('merges stage and image objects field by field, and null means no time budget', () => {
    const base = demoPlan('quick');
    const plan = overridePlan(
      base,
      '{"instruct":{"lr":0.002},"align":{"steps":0},"trainBudgetSeconds":null,"lengthGroupBatches":4}',
    );
    expect(plan.instruct).toEqual({ ...base.instruct, lr: 0.002 });
    expect(plan.align.steps).toBe(0);
    expect(plan.align.lr).toBe(base.align.lr);
    expect(plan.trainBudgetSeconds).toBe(Number.POSITIVE_INFINITY);
    expect(plan.lengthGroupBatches).toBe(4);
    expect(plan.model).toEqual(base.model);
    expect(() => overridePlan(base, '{"instuct":{}}')).toThrow(/unknown field "instuct"/);
    expect(() => overridePlan(base, '[1]')).toThrow(/JSON object/);
  });
});

describe('vistune demo', () => {
  it('runs the real pipeline at the tiny size: report, falling loss, a model folder generate loads', async () => {
    const out = await mkdtemp(join(tmpdir(), 'vistune-demo-'));
    const { stdout } = await run(process.execPath, [bin, 'demo', '--smoke', '--out', out, '--json'], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    const report = JSON.parse(stdout);
    for (const key of ['vqaExactMatch', 'countAccuracy', 'groundingAcc50', 'groundingMeanIou']) {
      expect(report[key]).toBeGreaterThanOrEqual(0);
      // The shuffled-media control: the same prompts, each with another held-out image.
      expect(report.shuffledMedia[key]).toBeGreaterThanOrEqual(0);
      expect(report.shuffledMedia[key]).toBeLessThanOrEqual(1);
    }
    const kinds = report.perKind.map((r: { kind: string }) => r.kind);
    // Which kinds a 4-image test split holds depends on the seed; every row must be a world kind.
    for (const kind of kinds) expect(kind).toMatch(/^(vqa_[a-z]+|grounding|region_caption|description)$/);
    expect(report.overall.turns).toBe(report.evalTurns);
    expect(report.perKind.reduce((n: number, r: { turns: number }) => n + r.turns, 0)).toBe(report.evalTurns);
    expect(kinds.length).toBeGreaterThan(3);
    // Stage 0 ran and reported held-out shares; the smoke plan has no time budget, so every step ran.
    expect(report.tower.steps).toBe(4);
    for (const share of ['colour', 'shape', 'size', 'boxIou'])
      expect(report.tower.heldOut[share]).toBeGreaterThanOrEqual(0);
    expect(report.calibration.stepSeconds).toBeGreaterThan(0);
    expect(report.calibration.steps).toBe(report.calibration.plannedSteps);
    // Both stages ran their steps and the loss fell in each.
    expect(report.losses.map((l: { stage: string }) => l.stage)).toEqual(['align', 'instruct']);
    for (const l of report.losses) expect(l.last).toBeLessThan(l.first);
    const logged = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(logged).toHaveLength(report.losses.reduce((n: number, l: { steps: number }) => n + l.steps, 0));
    expect(existsSync(join(out, 'loss.html'))).toBe(true);
    for (const sample of report.samples) expect(existsSync(sample.picture)).toBe(true);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'preprocessor_config.json',
    ])
      expect(existsSync(join(report.modelDir, f)), f).toBe(true);

    const image = join(out, 'world', 'images', 'test-00000.png');
    const gen = await run(process.execPath, [
      bin,
      'generate',
      '--model',
      report.modelDir,
      '--image',
      image,
      '--prompt',
      'How many objects are there?',
      '--max-new-tokens',
      '3',
      '--no-eos',
      '--json',
    ]);
    const generated = JSON.parse(gen.stdout);
    expect(generated.ids).toHaveLength(3);
    expect(generated.prompt).toBe('USER: <image>\nHow many objects are there? ASSISTANT:');
  });
});

describe('generateAnswers', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
  });

  it('answers left-padded batches exactly as one prompt at a time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-demo-eval-'));
    await generateWorld({ outDir: dir, seed: 5, counts: { train: 0, val: 0, test: 6 } });
    const tokenizer = await writeWorldTokenizer(join(dir, 'tokenizer'));
    const imageTokenId = tokenizer.tokenToId('<image>') as number;
    const registry = await createVistuneRegistry();
    const hf = demoLlavaConfig(demoPlan('tiny').model, { vocabSize: tokenizer.vocabSize, imageTokenId });
    // A large init makes the untrained model's greedy answers differ from prompt to prompt (std 0.02 gives one token everywhere).
    const model = await createLlava(
      { ...hf, text_config: { ...hf.text_config, initializer_range: 0.5 } },
      registry,
      { seed: 1 },
    );
    const processor = (await registry.create('processor', {
      type: 'clip',
      ...demoPreprocessorConfig(64),
    })) as unknown as PixelProcessor;
    const load = cachedImageLoader(processor);
    const test = await loadWorldSplit(join(dir, 'test.json'));
    const prompts = evalPrompts(test, tokenizer, { tokenId: imageTokenId, slots: model.imageSeqLength });
    expect(new Set(prompts.map((p) => p.ids.length)).size).toBeGreaterThan(1); // padding is exercised
    const opts = { tokenizer, loadImage: (image: string) => load(join(dir, image)) };
    const batched = await generateAnswers(model, prompts, { ...opts, batchSize: 64 });
    const before = tf.memory().numTensors; // after a first run: lazily built tables (RoPE) stay
    const single = await generateAnswers(model, prompts, { ...opts, batchSize: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(batched).sort()).toEqual(test.map((r) => r.id).sort());
    expect(batched).toEqual(single);
    model.dispose();
  });
});

describe('pretrainVisionTower', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
  });

  it('teaches the tower to name held-out cells far above chance, and leaves its trainable flags as found', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-demo-tower-'));
    const plan = demoPlan('quick');
    await generateWorld({
      outDir: dir,
      seed: 9,
      grid: 2,
      maxObjects: 4,
      counts: { train: 200, val: 0, test: 40 },
    });
    const tokenizer = await writeWorldTokenizer(join(dir, 'tokenizer'));
    const registry = await createVistuneRegistry();
    const hf = demoLlavaConfig(plan.model, {
      vocabSize: tokenizer.vocabSize,
      imageTokenId: tokenizer.tokenToId('<image>') as number,
    });
    const model = await createLlava(hf, registry, { seed: 2 });
    model.trainOnly(['llm.*']);
    const processor = (await registry.create('processor', {
      type: 'clip',
      ...demoPreprocessorConfig(64),
    })) as unknown as PixelProcessor;
    const losses: number[] = [];
    const result = await pretrainVisionTower(model, {
      worldDir: dir,
      cellSize: plan.model.patchSize,
      loadImage: cachedImageLoader(processor),
      plan: { steps: 120, lr: 3e-3, batchSize: 16 },
      seed: 1,
      onStep: (_, loss) => losses.push(loss),
    });
    expect(losses).toHaveLength(120);
    expect(result.lastLoss).toBeLessThan(result.firstLoss / 4);
    // 160 held-out cells; chance is 1/8 for colour (7 + empty), 1/6 for shape, 1/3 for size
    expect(result.heldOut.cells).toBe(160);
    expect(result.heldOut.shape).toBeGreaterThan(0.6);
    expect(result.heldOut.colour).toBeGreaterThan(0.6);
    const towerFlags = model.namedParameters().filter(([n]) => n.startsWith('modalities.image.encoder.'));
    expect(towerFlags.every(([, p]) => !p.trainable)).toBe(true);
    model.dispose();
  });
});
