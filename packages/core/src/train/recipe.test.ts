// Recipes: the shipped LLaVA-1.5 recipes parse to LLaVA's hyperparameters, YAML and JSON agree, paths resolve
// against the recipe's folder, and errors name the file and the field path.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRecipe, parseRecipe, stageTemplate } from './recipe.js';

const recipes = join(import.meta.dirname, 'recipes');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-recipe-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const minimal = {
  model: 'model.yaml',
  data: { train: 'train.json' },
  stages: [{ name: 'a', train: ['x.*'], lr: 1e-3, epochs: 1 }],
  output: 'out',
};

describe('loadRecipe', () => {
  it('LLaVA-1.5 stage 1: projector only, plain template, lr 1e-3, 3% warmup, cosine, global batch 256', async () => {
    const r = await loadRecipe(join(recipes, 'llava-stage1.yaml'));
    expect(r.source).toBe(join(recipes, 'llava-stage1.yaml'));
    expect(r.model).toEqual({ kind: 'pretrained', dir: join(recipes, 'models/base-llava') });
    expect(r.data.train).toBe(join(recipes, 'data/blip_laion_cc_sbu_558k.json'));
    expect(r.stages).toHaveLength(1);
    const [s] = r.stages;
    expect(stageTemplate(r, s)).toBe('plain');
    expect(s).toMatchObject({
      train: ['modalities.image.adapter.*'],
      lr: 1e-3,
      epochs: 1,
      warmupRatio: 0.03,
      schedule: 'cosine',
      weightDecay: 0,
    });
    expect(s.lora).toBeUndefined();
    expect(r.data.batchSize * r.optimizer.accumulate).toBe(256);
    expect(r.optimizer).toMatchObject({ type: 'adamw', betas: [0.9, 0.999], clip: 1, weightDecay: 0 });
    expect(r.checkpoint.dir).toBe(join(recipes, 'runs/llava-stage1/checkpoints'));
  });

  it('LLaVA-1.5 stage 2 LoRA: r 128, α 256, lr 2e-4, projector at 2e-5, vicuna_v1, global batch 128', async () => {
    const r = await loadRecipe(join(recipes, 'llava-stage2-lora.yaml'));
    const [s] = r.stages;
    expect(s.lora).toEqual({ r: 128, alpha: 256, dropout: 0.05, targets: ['llm.model.layers.*_proj'] });
    expect(s.lr).toBe(2e-4);
    expect(s.paramGroups).toEqual([{ patterns: ['modalities.image.adapter.*'], lr: 2e-5 }]);
    expect(stageTemplate(r, s)).toBe('vicuna_v1');
    expect(r.data.groupByLength).toBe(true);
    expect(r.data.batchSize * r.optimizer.accumulate).toBe(128);
    // Stage 2 starts from stage 1's published model folder.
    expect(r.model).toEqual({ kind: 'pretrained', dir: join(recipes, 'runs/llava-stage1/model') });
  });

  it('reads JSON with the same meaning as YAML and fills defaults', async () => {
    const path = join(dir, 'r.json');
    await writeFile(path, JSON.stringify(minimal));
    const r = await loadRecipe(path);
    expect(r.model).toEqual({ kind: 'path', path: join(dir, 'model.yaml') });
    expect(r.output).toBe(join(dir, 'out'));
    expect(r.data).toMatchObject({
      template: 'vicuna_v1',
      maxLength: 2048,
      batchSize: 1,
      groupByLength: false,
    });
    expect(r.optimizer).toEqual({
      type: 'adamw',
      betas: [0.9, 0.999],
      eps: 1e-8,
      momentum: 0,
      weightDecay: 0,
      clip: 1,
      accumulate: 1,
    });
    expect(r.checkpoint).toEqual({
      dir: join(dir, 'out', 'checkpoints'),
      every: 500,
      keep: 3,
      keepBest: false,
    });
    expect(r.finalModel).toBe('last');
    expect(r.seed).toBe(42);
    expect(r.stages[0]).toMatchObject({ freeze: [], warmupRatio: 0, schedule: 'cosine', paramGroups: [] });
    const yamlPath = join(dir, 'r.yaml');
    await writeFile(
      yamlPath,
      'model: model.yaml\ndata: { train: train.json }\nstages:\n  - { name: a, train: ["x.*"], lr: 1e-3, epochs: 1 }\noutput: out\n',
    );
    expect({ ...(await loadRecipe(yamlPath)), source: '' }).toEqual({ ...r, source: '' });
  });

  it('data.train and data.val take a list of files (a mixture), each resolved against the recipe folder', () => {
    const data = {
      train: ['./world/train.json', 'world/train-text.json', '/abs/extra.jsonl'],
      val: ['./world/val.json'],
    };
    const r = parseRecipe({ ...minimal, data }, { baseDir: '/r' });
    expect(r.data.train).toEqual(['/r/world/train.json', '/r/world/train-text.json', '/abs/extra.jsonl']);
    expect(r.data.val).toEqual(['/r/world/val.json']);
    // One path stays one path.
    expect(parseRecipe(minimal, { baseDir: '/r' }).data.train).toBe('/r/train.json');
  });

  it('an inline model config is kept as data', () => {
    const r = parseRecipe({ ...minimal, model: { llm: { type: 'llama' } } });
    expect(r.model).toEqual({ kind: 'config', config: { llm: { type: 'llama' } } });
  });
});

describe('recipe errors', () => {
  it('name the file and the field path', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(
      path,
      [
        'model: m',
        'data: { train: t, batchSize: 0 }',
        'stages:',
        '  - { name: a, train: ["x"], lr: 1e-3, epochs: 1 }',
        '  - { name: b, train: ["x"], lr: "fast", steps: 3, epochs: 1, lora: { r: 8, targets: [] } }',
        'optimizer: { type: adam, clip: 1 }',
        'sed: 1',
        'output: o',
      ].join('\n'),
    );
    const error = await loadRecipe(path).catch((e: Error) => e);
    const message = (error as Error).message;
    expect(message).toContain(`${path}: stages[1].lr: expected number`);
    expect(message).toContain(`${path}: data.batchSize:`);
    expect(message).toContain(`${path}: stages[1].lora.alpha: missing`);
    expect(message).toContain(`${path}: stages[1].lora.targets:`);
    expect(message).toContain(`${path}: optimizer.type:`);
    expect(message).toMatch(/\(root\): unknown key 'sed'/);
  });

  it('epochs xor steps, something to train, unique stage names, model shape', () => {
    const stage = { name: 'a', train: ['x'], lr: 1 };
    const parse =
      (stages: unknown[], extra = {}) =>
      () =>
        parseRecipe({ ...minimal, stages, ...extra }, { source: 'r.yaml' });
    expect(parse([{ ...stage, epochs: 1, steps: 2 }])).toThrow(
      /r\.yaml: stages\[0\]\.steps: give epochs or steps, not both/,
    );
    expect(parse([stage])).toThrow(/stages\[0\]\.epochs: missing: give epochs/);
    expect(parse([{ ...stage, train: [], steps: 1 }])).toThrow(/stages\[0\]\.train: nothing to train/);
    expect(
      parse([{ ...stage, train: [], steps: 1, lora: { r: 4, alpha: 8, targets: ['*.q_proj'] } }]),
    ).not.toThrow();
    expect(
      parse([
        { ...stage, steps: 1 },
        { ...stage, steps: 1 },
      ]),
    ).toThrow(/stages\[1\]\.name: duplicate stage name "a"/);
    expect(parse([{ ...stage, steps: 1 }], { model: { from: '' } })).toThrow(
      /model\.from: expected the path/,
    );
    expect(parse([{ ...stage, steps: 1 }], { model: 3 })).toThrow(
      /model: expected a model file\/folder path/,
    );
  });

  it('data.lengthBuckets: increasing token lengths, not with groupByLength', () => {
    const parse = (data: Record<string, unknown>) => () =>
      parseRecipe({ ...minimal, data: { ...minimal.data, ...data } }, { source: 'r.yaml' });
    expect(parse({ lengthBuckets: [34, 64] })().data.lengthBuckets).toEqual([34, 64]);
    expect(parse({})().data.lengthBuckets).toBeUndefined();
    expect(parse({ lengthBuckets: [64, 34] })).toThrow(
      /r\.yaml: data\.lengthBuckets: bucket boundaries must increase/,
    );
    expect(parse({ lengthBuckets: [0] })).toThrow(/data\.lengthBuckets/);
    expect(parse({ lengthBuckets: [34], groupByLength: true })).toThrow(
      /data\.lengthBuckets: give lengthBuckets or groupByLength, not both/,
    );
  });

  it('a data file list entry that is not a path names data.train[i] / data.val[i]', () => {
    const parse = (data: unknown) => () => parseRecipe({ ...minimal, data }, { source: 'r.yaml' });
    expect(parse({ train: ['a.json', 3, 'c.json'] })).toThrow(
      /r\.yaml: data\.train\[1\]: expected a data file path \(a non-empty string\), got number 3/,
    );
    expect(parse({ train: 'a.json', val: ['v.json', { file: 'w.json' }] })).toThrow(
      /r\.yaml: data\.val\[1\]: expected a data file path \(a non-empty string\), got an object/,
    );
    expect(parse({ train: [] })).toThrow(
      /data\.train: expected a data file path or a non-empty list of them, got an empty list/,
    );
    expect(parse({ train: '' })).toThrow(/data\.train: expected a data file path .*got an empty string/);
    expect(parse({})).toThrow(/data\.train: missing \(expected a data file path or a list of them\)/);
  });

  it('a YAML syntax error names the file; a missing file says so', async () => {
    const path = join(dir, 'broken.yaml');
    await writeFile(path, 'stages: [\n  - name: a\n');
    await expect(loadRecipe(path)).rejects.toThrow(new RegExp(`${path} is not valid YAML`));
    await expect(loadRecipe(join(dir, 'nope.yaml'))).rejects.toThrow(/recipe not found: .*nope\.yaml/);
  });
});
