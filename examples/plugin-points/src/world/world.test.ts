import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecipe, Tokenizer } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPly } from '../ply.js';
import { SHAPES } from '../shapes.js';
import { generatePointsWorld, type PointsRecord } from './generate.js';
import { POINTS_TOKEN_ID } from './tokenizer.js';

let dir = '';
let records: PointsRecord[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'points-world-'));
  await generatePointsWorld({ outDir: dir, n: 40, seed: 3, steps: 7 });
  records = JSON.parse(await readFile(join(dir, 'train.json'), 'utf8'));
});

describe('the points world', () => {
  it('writes a train/test split of LLaVA records with one <points> item each', async () => {
    const test = JSON.parse(await readFile(join(dir, 'test.json'), 'utf8')) as PointsRecord[];
    expect([records.length, test.length]).toEqual([32, 8]);
    for (const r of [...records, ...test]) {
      expect(r.conversations[0].value).toMatch(/^<points>\n/);
      expect(r.conversations[1].value).toBe(r.kind === 'shape' ? r.shape : r.colour);
    }
    expect(new Set(records.map((r) => r.shape)).size).toBeGreaterThan(2);
  });

  it('writes .ply files of the records’ objects', async () => {
    const cloud = await readPly(await readFile(join(dir, records[0].points)), records[0].points);
    expect(cloud.count).toBeGreaterThanOrEqual(200);
    expect(cloud.count).toBeLessThanOrEqual(500);
    expect(cloud.colors).toBeDefined();
  });

  it('is a function of its seed', async () => {
    const again = await mkdtemp(join(tmpdir(), 'points-world-'));
    await generatePointsWorld({ outDir: again, n: 40, seed: 3, steps: 7 });
    expect(await readFile(join(again, 'train.json'), 'utf8')).toBe(
      await readFile(join(dir, 'train.json'), 'utf8'),
    );
    expect(await readFile(join(again, records[5].points), 'utf8')).toBe(
      await readFile(join(dir, records[5].points), 'utf8'),
    );
  });

  it('has a word-level tokenizer: one token per world word, <points> at the placeholder id', async () => {
    const tokenizer = await Tokenizer.fromDir(join(dir, 'tokenizer'));
    expect(tokenizer.tokenToId('<points>')).toBe(POINTS_TOKEN_ID);
    const ids = tokenizer.encode('What shape is this? cube', { addSpecialTokens: false });
    expect(ids).toHaveLength(6);
    expect(tokenizer.decode(ids)).toBe('what shape is this? cube');
    for (const shape of SHAPES) expect(tokenizer.encode(shape, { addSpecialTokens: false })).toHaveLength(1);
    // An unknown word falls back to letters instead of <unk>.
    expect(tokenizer.decode(tokenizer.encode('pyramid', { addSpecialTokens: false }))).toBe('pyramid');
  });

  it('renders media parts and marker text to the same ids (training and generate agree)', async () => {
    const tokenizer = await Tokenizer.fromDir(join(dir, 'tokenizer'));
    const asParts = tokenizer.applyChatTemplate(
      [
        {
          role: 'user',
          content: [
            { type: 'text', text: '<points>' },
            { type: 'text', text: 'What shape is this?' },
          ],
        },
      ],
      { addGenerationPrompt: true },
    );
    const asText = tokenizer.applyChatTemplate(
      [{ role: 'user', content: [{ type: 'text', text: '<points>\nWhat shape is this?' }] }],
      { addGenerationPrompt: true },
    );
    expect(tokenizer.encode(asParts)).toEqual(tokenizer.encode(asText));
    expect(asText).toBe('USER: <points>\nWhat shape is this? ASSISTANT:');
  });

  it('writes a recipe core reads, with the tokenizer’s vocabulary size and the steps asked for', async () => {
    const recipe = await loadRecipe(join(dir, 'recipe.yaml'));
    const tokenizer = await Tokenizer.fromDir(join(dir, 'tokenizer'));
    expect(recipe.plugins).toEqual(['vistune-plugin-points']);
    expect(recipe.task).toEqual({ type: 'points_qa' });
    expect(recipe.stages[0].steps).toBe(7);
    const text = await readFile(join(dir, 'recipe.yaml'), 'utf8');
    expect(text).toContain(`vocab_size: ${tokenizer.vocabSize}`);
  });

  it('refuses a world with an empty split', async () => {
    await expect(generatePointsWorld({ outDir: join(dir, 'x'), n: 2, testFraction: 0.01 })).rejects.toThrow(
      /empty split: raise --n/,
    );
  });
});
