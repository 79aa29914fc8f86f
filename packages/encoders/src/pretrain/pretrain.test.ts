import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry, initBackend, type ModalityEncoder, Rng, tf } from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CnnVisionEncoder } from '../cnn/model.js';
import { register } from '../register.js';
import { VisionTransformer } from '../vit/model.js';
import { loadPretrainedVisionTransformer } from '../vit/pretrained.js';
import { cellTargets } from './objectives.js';
import { readPretrainItems } from './records.js';
import { type LoadedImage, type PretrainEvidence, pretrainTower } from './run.js';
import { loadVisionTower, saveVisionTower } from './tower.js';

// Tiny world: 16×16 images on a 2×2 grid of 8-pixel cells; each image holds 1–2 glyphs, a horizontal ("bar") or
// vertical ("post") 6×2 stroke, each in its own cell. Labels depend on shape only, so a tower must see shape.
const SIZE = 16;
const CELL = 8;
interface Glyph {
  label: 'bar' | 'post';
  cell: number;
  dx: number;
  dy: number;
}

/** `full`: a glyph in every cell, all of one shape (so a masked cell is predictable from the others). */
function makeScene(rng: Rng, full: boolean): Glyph[] {
  const count = full ? 4 : 1 + Math.floor(rng.nextFloat() * 2);
  const cells = [0, 1, 2, 3].sort(() => rng.nextFloat() - 0.5).slice(0, count);
  const shared = rng.nextFloat() < 0.5 ? 'bar' : 'post';
  return cells.map((cell) => ({
    label: full ? shared : rng.nextFloat() < 0.5 ? 'bar' : 'post',
    cell,
    dx: Math.floor(rng.nextFloat() * 2),
    dy: Math.floor(rng.nextFloat() * 2),
  }));
}

function glyphBox(g: Glyph): [number, number, number, number] {
  const x0 = (g.cell % 2) * CELL + 1 + g.dx;
  const y0 = Math.floor(g.cell / 2) * CELL + 1 + g.dy;
  return g.label === 'bar' ? [x0, y0 + 2, x0 + 6, y0 + 4] : [x0 + 2, y0, x0 + 4, y0 + 6];
}

function render(glyphs: readonly Glyph[]): tf.Tensor3D {
  const pixels = new Float32Array(3 * SIZE * SIZE).fill(-1);
  for (const g of glyphs) {
    const [x0, y0, x1, y1] = glyphBox(g);
    for (let c = 0; c < 3; c++)
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) pixels[c * SIZE * SIZE + y * SIZE + x] = 1;
  }
  return tf.tensor3d(pixels, [3, SIZE, SIZE]);
}

interface World {
  train: {
    image: string;
    text: string;
    objects: { label: string; box: [number, number, number, number] }[];
  }[];
  heldOut: World['train'];
  loadImage: (path: string) => Promise<LoadedImage>;
}

function world(trainCount: number, heldOutCount: number, full = false): World {
  const rng = new Rng(5);
  const scenes = new Map<string, Glyph[]>();
  const items = Array.from({ length: trainCount + heldOutCount }, (_, i) => {
    const glyphs = makeScene(rng, full);
    const image = `scene-${i}.png`;
    scenes.set(image, glyphs);
    // one word per glyph: its cell and shape (`tlbar`, `brpost`)
    const text = glyphs.map((g) => `${['tl', 'tr', 'bl', 'br'][g.cell]}${g.label}`).join(' ');
    return { image, text, objects: glyphs.map((g) => ({ label: g.label, box: glyphBox(g) })) };
  });
  return {
    train: items.slice(0, trainCount),
    heldOut: items.slice(trainCount),
    loadImage: async (path) => ({ tensor: render(scenes.get(path) as Glyph[]) }),
  };
}

const cnn = () =>
  new CnnVisionEncoder(
    {
      model_type: 'vistune_cnn_vision',
      num_channels: 3,
      hidden_sizes: [8, 16],
      patch_size: CELL,
      hidden_size: 16,
      layer_norm_eps: 1e-5,
      initializer_range: 0.02,
    },
    { seed: 1 },
  );

/** A tiny ViT tower on the world's images: one patch per cell. */
const vit = (modelType: 'clip_vision_model' | 'siglip_vision_model', layers: number, seed: number) =>
  VisionTransformer.fromHFConfig(
    {
      model_type: modelType,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: layers,
      num_attention_heads: 2,
      image_size: SIZE,
      patch_size: CELL,
    },
    { seed },
  );

const byName = (evidence: readonly PretrainEvidence[], prefix: string) => {
  const e = evidence.find((x) => x.name.startsWith(prefix));
  if (!e) throw new Error(`no evidence named ${prefix}: ${evidence.map((x) => x.name).join(', ')}`);
  return e;
};

let dir: string;
beforeAll(async () => {
  await initBackend({ quiet: true });
  dir = await mkdtemp(join(tmpdir(), 'vistune-pretrain-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cellTargets', () => {
  it('puts each object in the cell of its box centre, box in cell units', () => {
    const targets = cellTargets(
      { image: 'x', text: '', objects: [{ label: 'a', box: [10, 2, 14, 6] }] },
      [2, 2],
      [16, 16],
    );
    expect(targets).toEqual([{ cell: 1, label: 'a', box: [0.25, 0.25, 0.75, 0.75] }]);
  });
});

describe('pretrainTower', () => {
  const data = world(120, 40);
  const run = (
    objective: 'supervised' | 'clip' | 'siglip' | 'mae',
    tower: ModalityEncoder<tf.Tensor4D>,
    steps: number,
    w: World = data,
  ) =>
    pretrainTower(tower, {
      objective,
      train: w.train,
      heldOut: w.heldOut,
      loadImage: w.loadImage,
      steps,
      lr: 1e-2,
      batchSize: 32,
      seed: 3,
    });

  it('supervised: the loss falls and the cell probe beats its shuffled-label control', async () => {
    const tower = cnn();
    const result = await run('supervised', tower, 60);
    expect(result.lastLoss).toBeLessThan(result.firstLoss * 0.5);
    const probe = byName(result.evidence, 'linear probe: object label');
    expect(probe.value).toBeGreaterThan(0.9);
    expect(probe.value).toBeGreaterThan(probe.control + 0.2);
    expect(probe.before).toBeDefined();
    tower.dispose();
  });

  it.each(['clip', 'siglip'] as const)(
    '%s: the loss falls and recall@1 beats shuffled pairs',
    async (objective) => {
      const tower = cnn();
      const result = await run(objective, tower, 80);
      expect(result.lastLoss).toBeLessThan(result.firstLoss);
      const recall = byName(result.evidence, 'image→text recall@1');
      expect(recall.value, JSON.stringify(result)).toBeGreaterThan(recall.control + 0.1);
      tower.dispose();
    },
  );

  it('mae: the loss falls and masked cells beat the mean-cell control', async () => {
    const tower = cnn();
    const result = await run('mae', tower, 60, world(120, 40, true));
    expect(result.lastLoss).toBeLessThan(result.firstLoss);
    const error = byName(result.evidence, 'masked-cell pixel error');
    expect(error.value).toBeLessThan(error.control);
    tower.dispose();
  });

  it('trains a CLIP ViT tower too (CLS dropped, patch grid = cells)', async () => {
    const tower = vit('clip_vision_model', 1, 2);
    const result = await run('supervised', tower, 30);
    expect(result.lastLoss).toBeLessThan(result.firstLoss);
    tower.dispose();
  });
});

describe('tower folders', () => {
  const pixels = () =>
    tf.stack([render([{ label: 'bar', cell: 0, dx: 0, dy: 1 }]), render([])]) as tf.Tensor4D;
  const last = (tower: ModalityEncoder<tf.Tensor4D>) => {
    const out = tower.forward(pixels()).hiddenStates[0] as tf.Tensor3D;
    const values = Array.from(out.dataSync());
    out.dispose();
    return values;
  };

  it('a ViT tower saves as a HF CLIP vision folder that loadPretrainedVisionTransformer reads', async () => {
    const tower = vit('clip_vision_model', 2, 9);
    const out = join(dir, 'vit');
    await saveVisionTower(tower, out, { preprocessorConfig: { image_processor_type: 'CLIPImageProcessor' } });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.model_type).toBe('clip_vision_model');
    expect(config.architectures).toEqual(['CLIPVisionModel']);
    const { model } = await loadPretrainedVisionTransformer(out);
    expect(model.namedParameters().map(([n]) => n)).toContain('vision_model.encoder.layers.1.mlp.fc2.weight');
    expect(last(model)).toEqual(last(tower));
    tower.dispose();
    model.dispose();
  });

  it('a SigLIP tower round-trips, and a CNN tower loads through the cnn_vision entry', async () => {
    const siglip = vit('siglip_vision_model', 1, 4);
    await saveVisionTower(siglip, join(dir, 'siglip'));
    const back = await loadVisionTower(join(dir, 'siglip'));
    expect(last(back)).toEqual(last(siglip));

    const tower = cnn();
    await saveVisionTower(tower, join(dir, 'cnn'));
    const registry = createRegistry();
    register(registry);
    const loaded = (await registry.create('encoder', {
      type: 'cnn_vision',
      pretrained: join(dir, 'cnn'),
    })) as CnnVisionEncoder;
    expect(last(loaded)).toEqual(last(tower));
    expect(loaded.componentConfig()).toMatchObject({
      type: 'cnn_vision',
      hidden_sizes: [8, 16],
      patch_size: CELL,
    });
    await expect(
      registry.create('encoder', { type: 'clip_vision', pretrained: join(dir, 'cnn') }),
    ).rejects.toThrow(/vistune_cnn_vision/);
    for (const m of [siglip, back, tower, loaded]) m.dispose();
  });
});

describe('readPretrainItems', () => {
  it('merges records of one image and reads objects and labels', async () => {
    const file = join(dir, 'data.json');
    await writeFile(
      file,
      JSON.stringify([
        {
          id: 'a',
          image: 'i.png',
          conversations: [
            { from: 'human', value: '<image>\nHow many?' },
            { from: 'gpt', value: '2' },
          ],
          objects: [{ label: '3', box: [0, 0, 4, 4] }],
        },
        { id: 'b', image: 'i.png', conversations: [{ from: 'gpt', value: 'three' }], labels: ['digit'] },
      ]),
    );
    const items = await readPretrainItems(file);
    expect(items).toEqual([
      {
        image: join(dir, 'i.png'),
        text: 'How many? 2 three',
        objects: [{ label: '3', box: [0, 0, 4, 4] }],
        labels: ['digit'],
      },
    ]);
  });

  it('names the file, record and field of a bad box', async () => {
    const file = join(dir, 'bad.jsonl');
    await writeFile(
      file,
      `${JSON.stringify({ id: 7, image: 'i.png', objects: [{ label: 'x', box: [4, 0, 2, 4] }] })}\n`,
    );
    await expect(readPretrainItems(file)).rejects.toThrow(
      /bad\.jsonl: record 0 \(id 7\)\.objects\[0\]\.box: expected \[x0, y0, x1, y1\]/,
    );
  });
});
