import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnswerMetric,
  createModel,
  createRegistry,
  initBackend,
  loadPretrained,
  type MediaProcessor,
  type Registry,
  register as registerCore,
  type TaskFamily,
  tf,
} from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { plyText } from './ply.js';
import { register } from './register.js';
import { sampleObject, seededRandom } from './shapes.js';

const COMPOSITION = {
  model_type: 'vistune',
  llm: {
    type: 'llama',
    config: {
      vocab_size: 40,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      max_position_embeddings: 32,
    },
  },
  modalities: {
    points: {
      placeholder_token_id: 4,
      encoder: { type: 'point_mlp', hidden_size: 12, groups: 4 },
      adapter: { type: 'point_pool', pool: 2 },
      processor: { type: 'points', num_points: 32 },
    },
  },
};

function registry(): Registry {
  const r = createRegistry();
  registerCore(r.withOrigin('@vistune/core'));
  register(r.withOrigin('vistune-plugin-points'));
  return r;
}

beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

describe('register()', () => {
  it('adds one entry of each kind, all with the plugin as origin', () => {
    const entries = registry()
      .list()
      .filter((e) => e.origin === 'vistune-plugin-points')
      .map((e) => `${e.kind}:${e.name}`);
    expect(entries.sort()).toEqual(
      [
        'adapter:point_pool',
        'encoder:point_mlp',
        'media:points',
        'metric:shape_accuracy',
        'processor:points',
        'task:points_qa',
      ].sort(),
    );
  });

  it('gives the task family its media and metrics, each metric an AnswerMetric', async () => {
    const r = registry();
    const task = r.createSync('task', { type: 'points_qa' }) as TaskFamily;
    expect(task.media).toEqual(['points']);
    for (const config of task.metrics ?? [])
      expect(typeof ((await r.create('metric', config)) as AnswerMetric).score).toBe('function');
  });

  it('validates configs with the schemas, naming the field', async () => {
    await expect(registry().create('processor', { type: 'points', num_points: 0 })).rejects.toThrow(
      /num_points/,
    );
    await expect(registry().create('encoder', { type: 'point_mlp', groups: 'eight' })).rejects.toThrow(
      /groups/,
    );
  });

  it('builds a vistune composition with the points modality (inDim/outDim/seed filled in), saves it and loads it back', async () => {
    const r = registry();
    const model = await createModel(COMPOSITION, r, { seed: 1 });
    expect(model.composition?.plugins).toEqual(['vistune-plugin-points']);
    expect(model.composition?.modalities.points.adapter).toMatchObject({
      type: 'point_pool',
      inDim: 12,
      outDim: 16,
      pool: 2,
    });
    const processor = (await r.create(
      'processor',
      COMPOSITION.modalities.points.processor,
    )) as MediaProcessor;
    const cloud = sampleObject({ shape: 'cone', colour: 'red', size: 'small' }, 50, seededRandom(1));
    const item = await processor.process(new TextEncoder().encode(plyText(cloud)));
    expect(model.slotsPerItem('points', item.tensor.shape)).toBe(2);
    const ids = tf.tensor2d([[1, 4, 4, 9, 10]], [1, 5], 'int32');
    const before = model.forward({ inputIds: ids, media: { points: [[item.tensor]] } }).logits as tf.Tensor3D;
    expect(before.shape).toEqual([1, 5, 40]);

    const dir = await mkdtemp(join(tmpdir(), 'points-model-'));
    await model.save(dir);
    const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(saved.vistune_plugins).toEqual(['vistune-plugin-points']);
    expect(saved.modalities.points.processor).toEqual({ type: 'points', num_points: 32 });
    const loaded = await loadPretrained(dir, r);
    const after = loaded.forward({ inputIds: ids, media: { points: [[item.tensor]] } }).logits as tf.Tensor3D;
    expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
    tf.dispose([ids, before, after, item.tensor]);
    model.dispose();
    loaded.dispose();
  });
});
