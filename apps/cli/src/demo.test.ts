import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

describe('vistune demo', () => {
  it('runs the whole loop on a handful of images and leaves a model that generate loads', async () => {
    const out = await mkdtemp(join(tmpdir(), 'vistune-demo-'));
    const { stdout } = await run(process.execPath, [bin, 'demo', '--smoke', '--out', out, '--json']);
    const m = JSON.parse(stdout);
    // Which kinds a 4-image test split holds depends on the seed; every row must be a world kind.
    const kinds = m.perKind.map((r: { kind: string }) => r.kind);
    expect(kinds.length).toBeGreaterThan(3);
    for (const kind of kinds) expect(kind).toMatch(/^(vqa_[a-z]+|grounding|region_caption|description)$/);
    expect(m.overall.turns).toBeGreaterThan(0);
    for (const key of ['vqaExactMatch', 'countAccuracy', 'groundingAcc50', 'groundingMeanIou'])
      expect(m).toHaveProperty(key);
    const modelDir = join(out, 'model');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json']) {
      expect(existsSync(join(modelDir, f)), f).toBe(true);
    }
    expect(existsSync(join(out, 'loss.html'))).toBe(true);
    const image = join(out, 'world', 'images', 'test-00000.png');
    const gen = await run(process.execPath, [
      bin,
      'generate',
      '--model',
      m.modelDir,
      '--image',
      image,
      '--prompt',
      'What colour is the circle?',
      '--max-new-tokens',
      '2',
      '--no-eos',
      '--json',
    ]);
    expect(JSON.parse(gen.stdout).ids).toHaveLength(2);
  });
});
