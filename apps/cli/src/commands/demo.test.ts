import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLlava, initBackend, tf } from '@vistune/core';
import {
  cachedImageLoader,
  demoLlavaConfig,
  demoPlan,
  demoPreprocessorConfig,
  evalPrompts,
  generateAnswers,
  generateWorld,
  loadWorldSplit,
  type PixelProcessor,
  writeWorldTokenizer,
} from '@vistune/demo-world';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../builtins.js';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

describe('vistune demo', () => {
  it('runs the real pipeline at the tiny size: report, falling loss, a model folder generate loads', async () => {
    const out = await mkdtemp(join(tmpdir(), 'vistune-demo-'));
    const { stdout } = await run(process.execPath, [bin, 'demo', '--smoke', '--out', out, '--json'], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    const report = JSON.parse(stdout);
    for (const key of ['vqaExactMatch', 'countAccuracy', 'groundingAcc50', 'groundingMeanIou'])
      expect(report[key]).toBeGreaterThanOrEqual(0);
    const kinds = report.perKind.map((r: { kind: string }) => r.kind);
    // Which kinds a 4-image test split holds depends on the seed; every row must be a world kind.
    for (const kind of kinds) expect(kind).toMatch(/^(vqa_[a-z]+|grounding|region_caption|description)$/);
    expect(report.overall.turns).toBe(report.evalTurns);
    expect(report.perKind.reduce((n: number, r: { turns: number }) => n + r.turns, 0)).toBe(report.evalTurns);
    expect(kinds.length).toBeGreaterThan(3);
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
    const registry = await builtinRegistry();
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
