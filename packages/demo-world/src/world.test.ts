import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderScene } from './render.js';
import type { SceneLayout } from './scene.js';
import {
  exampleRecord,
  generateWorld,
  loadWorldManifest,
  loadWorldSplit,
  type WorldManifest,
} from './world.js';

let root: string;
const counts = { train: 8, val: 3, test: 3 };

async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length), await readFile(path));
  }
  return files;
}

let manifest: WorldManifest;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'demo-world-'));
  manifest = await generateWorld({ outDir: join(root, 'a'), seed: 11, counts });
  await generateWorld({ outDir: join(root, 'b'), seed: 11, counts, concurrency: 3 });
  await generateWorld({ outDir: join(root, 'c'), seed: 12, counts });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('generateWorld', () => {
  it('writes the same bytes for the same seed (whatever the concurrency) and different ones for another seed', async () => {
    const a = await filesUnder(join(root, 'a'));
    const b = await filesUnder(join(root, 'b'));
    const c = await filesUnder(join(root, 'c'));
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [path, bytes] of a) expect(bytes.equals(b.get(path) as Buffer), path).toBe(true);
    expect(a.size).toBe(8 + 3 + 3 + 5);
    expect((a.get('/train.json') as Buffer).equals(c.get('/train.json') as Buffer)).toBe(false);
    expect(
      (a.get('/images/train-00000.png') as Buffer).equals(c.get('/images/train-00000.png') as Buffer),
    ).toBe(false);
  });

  it('returns and writes a manifest that matches the split files', async () => {
    expect(await loadWorldManifest(join(root, 'a'))).toEqual(manifest);
    expect(manifest).toMatchObject({
      seed: 11,
      imageSize: 64,
      questionsPerImage: 4,
      boxFormat: { format: 'grid', bins: 32 },
    });
    for (const split of ['train', 'val', 'test'] as const) {
      const records = await loadWorldSplit(join(root, 'a', `${split}.json`));
      const summary = manifest.splits[split];
      expect(summary.images).toBe(counts[split]);
      expect(summary.records).toBe(records.length);
      expect(Object.values(summary.kinds).reduce((s, n) => s + (n ?? 0), 0)).toBe(records.length);
      expect(new Set(records.map((r) => r.image)).size).toBe(counts[split]);
      for (const record of records) expect(record.id.startsWith(`${split}-`)).toBe(true);
    }
  });

  it('stores lossless PNGs whose pixels are the render of the stored layout', async () => {
    const scenes = JSON.parse(await readFile(join(root, 'a', 'scenes.json'), 'utf8')) as Record<
      string,
      Record<string, SceneLayout>
    >;
    const layouts = Object.entries(scenes.val ?? {});
    expect(layouts.length).toBe(3);
    for (const [image, layout] of layouts) {
      const { data, info } = await sharp(join(root, 'a', image))
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([64, 64, 3]);
      expect(new Uint8Array(data)).toEqual(renderScene(layout).data);
    }
  });

  it('honours imageSize, kinds and questionsPerImage', async () => {
    const dir = join(root, 'd');
    const small = await generateWorld({
      outDir: dir,
      seed: 'x',
      counts: { train: 4, val: 0, test: 0 },
      imageSize: 96,
      kinds: ['vqa_count', 'grounding'],
      questionsPerImage: 2,
    });
    const records = await loadWorldSplit(join(dir, 'train.json'));
    expect(records.length).toBe(8);
    expect(new Set(records.map((r) => r.kind))).toEqual(new Set(['vqa_count', 'grounding']));
    expect(records.every((r) => r.imageSize === 96)).toBe(true);
    expect(small.splits.val.records).toBe(0);
    const metadata = await sharp(join(dir, 'images', 'train-00003.png')).metadata();
    expect([metadata.width, metadata.height]).toEqual([96, 96]);
  });

  it('rejects bad options with the field named', async () => {
    await expect(
      generateWorld({ outDir: join(root, 'e'), seed: 1, counts: { train: -1, val: 0, test: 0 } }),
    ).rejects.toThrow(/counts\.train must be a non-negative integer/);
    await expect(
      generateWorld({ outDir: join(root, 'e'), seed: 1, counts, kinds: ['vqa_colour' as 'vqa_color'] }),
    ).rejects.toThrow(/kinds must be a non-empty list/);
  });
});

describe('loadWorldSplit', () => {
  it('names the file and the field of an invalid record', async () => {
    const file = join(root, 'bad.json');
    await writeFile(
      file,
      JSON.stringify([{ id: 'x', image: 'i.png', imageSize: 64, kind: 'vqa_color', truth: [] }]),
    );
    await expect(loadWorldSplit(file)).rejects.toThrow(/bad\.json[\s\S]*0\.conversations/);
    await writeFile(file, '{ not json');
    await expect(loadWorldSplit(file)).rejects.toThrow(/bad\.json: cannot read the split as JSON/);
  });
});

describe('exampleRecord', () => {
  it('is a fixed, small LLaVA record with its truth', () => {
    const record = exampleRecord();
    expect(record).toEqual(exampleRecord());
    expect(record.kind).toBe('conversation');
    expect(record.conversations[0]?.value.startsWith('<image>\n')).toBe(true);
    expect(record.truth.length).toBe(record.conversations.length / 2);
    const grounding = exampleRecord('grounding');
    expect(grounding.truth[0]?.box).toHaveLength(4);
    expect(grounding.conversations[1]?.value).toMatch(/^\[\d+,\d+,\d+,\d+\]$/);
  });
});
