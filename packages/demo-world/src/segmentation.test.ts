// Segmentation records: the question names objects that the masks cover (checked by parsing the text, not
// through the generator), one mask per [SEG]; files only when asked; default worlds never contain them.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rleToMask } from '@vistune/tasks-grounding';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { BoxCodec } from './box-codec.js';
import { RECORD_KINDS, recordsForScene } from './instructions.js';
import { instanceMap, renderObjectMasks } from './masks.js';
import { createRng } from './random.js';
import { generateLayout, type SceneLayout, type SceneObject } from './scene.js';
import { segmentationTextSources } from './segmentation.js';
import { splitWorldPieces, worldVocabulary } from './tokenizer.js';
import { generateWorld, loadWorldManifest, loadWorldSplit } from './world.js';

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

/** The objects a name refers to: "red circle", "circle", "red object". */
function referred(layout: SceneLayout, name: string): SceneObject[] {
  const words = name.split(' ');
  if (words[1] === 'object') return layout.objects.filter((o) => o.colour === words[0]);
  if (words.length === 2) return layout.objects.filter((o) => `${o.colour} ${o.shape}` === name);
  return layout.objects.filter((o) => o.shape === name);
}

describe('segmentation records', () => {
  it('answer with one [SEG] per named object and carry that object’s exact mask, in order', () => {
    let pairs = 0;
    for (let i = 0; i < 60; i++) {
      const rng = createRng('segmentation-test', i);
      const layout = generateLayout(rng, { imageSize: 64 });
      const masks = renderObjectMasks(layout);
      const [record] = recordsForScene(layout, rng, {
        image: 'x.png',
        idPrefix: `s${i}`,
        kinds: ['segmentation'],
        questionsPerImage: 1,
        codec: new BoxCodec(),
      });
      if (!record) throw new Error('no record');
      const question = record.conversations[0]?.value ?? '';
      const answer = record.conversations[1]?.value ?? '';
      const truth = record.truth[0];
      expect(record.kind).toBe('segmentation');
      expect(truth?.kind).toBe('segmentation');
      const names = [...question.matchAll(/the ((?:\w+ )?\w+)(?= and|\.| in this|\?)/g)].map(
        (m) => m[1] ?? '',
      );
      expect(names.length).toBeGreaterThan(0);
      expect(answer.split('[SEG]').length - 1).toBe(names.length);
      expect(truth?.masks?.length).toBe(names.length);
      if (names.length === 2) pairs++;
      names.forEach((name, k) => {
        const objects = referred(layout, name);
        expect(objects.length, `${question} → ${name}`).toBe(1);
        const index = layout.objects.indexOf(objects[0] as SceneObject);
        expect(rleToMask(truth?.masks?.[k] ?? { size: [1, 1], counts: [1] })).toEqual(masks[index]?.data);
      });
    }
    expect(pairs).toBeGreaterThan(3);
  });

  it('labelled answers name each object after its [SEG]; question and masks stay those of the LISA form', () => {
    for (let i = 0; i < 30; i++) {
      const make = (style: 'lisa' | 'labelled') => {
        const rng = createRng('segmentation-style', i);
        const layout = generateLayout(rng, { imageSize: 64 });
        return recordsForScene(layout, rng, {
          image: 'x.png',
          idPrefix: 's',
          kinds: ['segmentation'],
          questionsPerImage: 1,
          codec: new BoxCodec(),
          segmentationAnswers: style,
        })[0];
      };
      const lisa = make('lisa');
      const labelled = make('labelled');
      expect(labelled?.conversations[0]).toEqual(lisa?.conversations[0]);
      expect(labelled?.truth[0]?.masks).toEqual(lisa?.truth[0]?.masks);
      const question = lisa?.conversations[0]?.value ?? '';
      const names = [...question.matchAll(/the ((?:\w+ )?\w+)(?= and|\.| in this|\?)/g)].map((m) => m[1]);
      const expected = names.reduce(
        (text, name) => text.replace('[SEG]', `[SEG#] ${name}`),
        lisa?.conversations[1]?.value ?? '',
      );
      expect(labelled?.conversations[1]?.value).toBe(expected.replaceAll('[SEG#]', '[SEG]'));
    }
  });

  it('are never drawn by default, and the default vocabulary is a prefix of the segmentation one', () => {
    expect(RECORD_KINDS).not.toContain('segmentation');
    const base = worldVocabulary();
    const withSeg = worldVocabulary(undefined, { segmentation: true });
    expect(withSeg.slice(0, base.length)).toEqual(base);
    const vocabulary = new Set(withSeg);
    for (const text of segmentationTextSources())
      for (const piece of splitWorldPieces(text.replace(/\{\w+\}/g, ' ')))
        if (piece.trim()) expect(vocabulary.has(piece), piece).toBe(true);
  });

  it('round-trip through split files, with instance-map PNGs only when maskFiles is set', async () => {
    const root = await mkdtemp(join(tmpdir(), 'seg-world-'));
    roots.push(root);
    const counts = { train: 3, val: 2, test: 0 };
    await generateWorld({ outDir: join(root, 'plain'), seed: 2, counts, kinds: ['segmentation'] });
    expect(await readdir(join(root, 'plain'))).not.toContain('masks');
    const manifest = await generateWorld({
      outDir: join(root, 'm'),
      seed: 2,
      counts,
      kinds: ['segmentation', 'vqa_color'],
      maskFiles: true,
    });
    expect(manifest.masksDir).toBe('masks');
    expect(await loadWorldManifest(join(root, 'm'))).toEqual(manifest);
    const records = await loadWorldSplit(join(root, 'm', 'val.json'));
    const segmentation = records.filter((r) => r.kind === 'segmentation');
    expect(segmentation.length).toBeGreaterThan(0);
    for (const r of segmentation) expect(r.truth[0]?.masks?.length).toBeGreaterThan(0);
    const scenes = JSON.parse(await readFile(join(root, 'm', 'scenes.json'), 'utf8')) as Record<
      string,
      Record<string, SceneLayout>
    >;
    const layout = scenes.val?.['images/val-00001.png'];
    if (!layout) throw new Error('layout missing');
    const png = join(root, 'm', 'masks', 'val-00001.png');
    expect((await sharp(png).metadata()).channels).toBe(1);
    const data = await sharp(png).extractChannel(0).raw().toBuffer();
    expect(new Uint8Array(data)).toEqual(instanceMap(layout));
  });
});
