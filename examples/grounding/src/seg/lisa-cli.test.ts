// LISA through the generic pipeline and the real CLI: `vistune train --config lisa-train.yaml` (task: lisa_seg,
// a vistune composition) on a tiny world saves a model folder with the [SEG] head, and `vistune generate` on
// that folder loads it (no LISA code in the CLI) and returns one mask per generated [SEG] (--json `masks`);
// `vistune eval --task lisa_seg` scores the answers with the task's metric.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyRecipe, writeLisaWorld } from './world.js';

const bin = new URL('../../../../apps/cli/dist/bin.js', import.meta.url).pathname;
const recipeSource = new URL('./recipes/lisa-train.yaml', import.meta.url).pathname;
const run = promisify(execFile);
const vistune = async (...args: string[]) =>
  (await run(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1' } })).stdout;

interface MaskJson {
  size: [number, number];
  area: number;
  bbox: [number, number, number, number] | null;
  counts: number[];
}

let dir: string;
let recipe: string;

beforeAll(async () => {
  if (!existsSync(bin))
    throw new Error(`${bin} is missing: build the CLI first (pnpm --filter vistune build)`);
  dir = await mkdtemp(join(tmpdir(), 'lisa-cli-'));
  await writeLisaWorld(dir, { train: 24, test: 2, seed: 1 });
  // The recipe as committed, shortened: 30 steps at a higher rate make the tiny model answer with [SEG].
  recipe = await copyRecipe(recipeSource, dir, { set: { steps: 30, lr: 3e-3, warmupSteps: 4 } });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('vistune train with task lisa_seg', () => {
  it('trains the [SEG] head from the recipe, saves it with the model, and generate returns its masks', async () => {
    const summary = JSON.parse(await vistune('train', '--config', recipe, '--json'));
    expect(summary).toMatchObject({ status: 'completed', step: 30 });
    // Every record's [SEG] count matched its masks (the task's targets reader), none was skipped.
    expect(summary.data.seg).toMatchObject({ read: 24, kept: 24, skipped: { total: 0 } });
    const modelDir = summary.modelDir as string;
    const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('vistune');
    expect(config.llm.config.vocab_size).toBe(323); // the world's 322 tokens + [SEG]
    expect(config.vistune_heads).toEqual([
      expect.objectContaining({ type: 'lisa_seg', triggerTokenId: 322, readOffset: 0, llmHiddenSize: 96 }),
    ]);
    const tokenizer = JSON.parse(await readFile(join(modelDir, 'tokenizer.json'), 'utf8'));
    expect(tokenizer.added_tokens).toContainEqual(expect.objectContaining({ id: 322, content: '[SEG]' }));
    // The head's loss is in the total: at init the LM's CE is about ln 323 and 2·BCE + 0.5·DICE adds over 1.
    const metrics = (await readFile(join(dir, 'run', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { loss: number });
    expect(metrics).toHaveLength(30);
    expect(metrics[0]?.loss).toBeGreaterThan(Math.log(323) + 1);
    expect(metrics.at(-1)?.loss).toBeLessThan(0.5 * (metrics[0]?.loss ?? 0));

    const overlay = join(dir, 'overlay.png');
    const out = JSON.parse(
      await vistune(
        'generate',
        '--model',
        modelDir,
        '--image',
        join(dir, 'world', 'images', 'test-00000.png'),
        '--prompt',
        'Can you segment the blue object in this image?',
        '--max-new-tokens',
        '8',
        '--overlay',
        overlay,
        '--json',
      ),
    ) as { ids: number[]; masks?: MaskJson[] };
    const segs = out.ids.filter((id) => id === 322).length;
    expect(segs).toBeGreaterThan(0);
    expect(out.masks).toHaveLength(segs);
    for (const mask of out.masks ?? []) {
      expect(mask.size).toEqual([64, 64]);
      expect(mask.counts.reduce((a, b) => a + b, 0)).toBe(64 * 64);
      expect(mask.area).toBe(mask.counts.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0));
    }
    expect(existsSync(overlay)).toBe(true);

    // eval --task lisa_seg scores the answers' text with the task's metric.
    const evaluation = JSON.parse(
      await vistune(
        'eval',
        '--model',
        modelDir,
        '--data',
        join(dir, 'world', 'test.json'),
        '--task',
        'lisa_seg',
        '--max-new-tokens',
        '8',
        '--json',
      ),
    ) as { scores: { kind: string; metrics: Record<string, { mean: number; n: number }> }[] };
    const overall = evaluation.scores.find((s) => s.kind === 'overall');
    expect(overall?.metrics.lisa_answer_match?.n).toBe(2);
    expect(overall?.metrics.lisa_answer_match?.mean).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
