import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import type { MultimodalBatch } from '../multimodal/model.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadInstructionData } from './dataset.js';
import {
  buildExample,
  type Example,
  type ExampleResult,
  IGNORE_INDEX,
  type MediaTokenSpec,
} from './examples.js';
import { disposeMultimodalBatch, InstructionDataLoader, type MediaLoader } from './loader.js';
import { readSamples } from './readers.js';
import type { MediaKindSpec, Sample, SampleResult } from './samples.js';
import { getTemplate } from './templates.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const IMAGE = 32000;

let dir: string;
let tokenizer: Tokenizer;
let VIDEO: number;
let DICOM: number;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  [VIDEO, DICOM] = tokenizer.addTokens(['<video>', '<scan>'], { special: true });
  dir = await mkdtemp(join(tmpdir(), 'vistune-media-'));
  await mkdir(join(dir, 'media'));
  for (const name of ['a.png', 'b.png', 'v1.mp4', 'v2.mp4', 'ct.dcm'])
    await writeFile(join(dir, 'media', name), 'not decoded here');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const h = (value: string) => ({ from: 'human', value });
const g = (value: string) => ({ from: 'gpt', value });
/** A plugin's kind: core knows nothing of it beyond this line. */
const dicom: MediaKindSpec = { name: 'dicom', marker: '<dicom>' };
const KINDS: MediaKindSpec[] = [
  { name: 'image', marker: '<image>' },
  { name: 'video', marker: '<video>' },
  dicom,
];

async function collect(file: string, mediaKinds?: MediaKindSpec[]): Promise<SampleResult[]> {
  const out: SampleResult[] = [];
  for await (const r of readSamples(file, { imageFolder: '/m', mediaKinds })) out.push(r);
  return out;
}

async function jsonl(name: string, records: unknown[]): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, records.map((r) => JSON.stringify(r)).join('\n'));
  return file;
}

describe('records with media kinds', () => {
  it('each kind comes from the field named like it (a string or a list), resolved, in marker order', async () => {
    const file = await jsonl('kinds.jsonl', [
      {
        id: 'mixed',
        images: ['a.png', 'b.png'],
        video: 'v1.mp4',
        dicom: ['/abs/ct.dcm'],
        conversations: [h('<image> vs <video>, then <dicom> and <image>'), g('ok')],
      },
      {
        instruction: 'Describe.',
        input: { video: ['v1.mp4', 'v2.mp4'], text: 'Briefly.' },
        output: 'Spins.',
      },
      { id: 'unread', video: 'v1.mp4', conversations: [h('<video> q'), g('a')] },
      { id: 'both', image: 'a.png', images: ['b.png'], conversations: [h('<image>'), g('a')] },
    ]);
    const [mixed, triplet, unread, both] = await collect(file, KINDS);
    expect(mixed.ok && mixed.sample.media).toEqual({
      image: ['/m/a.png', '/m/b.png'],
      video: ['/m/v1.mp4'],
      dicom: ['/abs/ct.dcm'],
    });
    expect(mixed.ok && mixed.sample.images).toEqual(['/m/a.png', '/m/b.png']);
    // No <video> marker: one per video in front of the first user turn, as LLaVA does for images.
    expect(triplet.ok && triplet.sample).toMatchObject({
      media: { image: [], video: ['/m/v1.mp4', '/m/v2.mp4'], dicom: [] },
      markersPrepended: true,
      turns: [{ role: 'user', text: '<video>\n<video>\nDescribe.\nBriefly.' }, { role: 'assistant' }],
    });
    expect(unread.ok && unread.sample.media?.video).toEqual(['/m/v1.mp4']);
    expect(both.ok ? 'ok' : both.message).toMatch(/sample both: image and images are both set; keep one$/);
    // Kinds the caller does not list are not read (the default reads images only).
    const [imagesOnly] = await collect(file);
    expect(imagesOnly.ok && imagesOnly.sample.media).toEqual({ image: ['/m/a.png', '/m/b.png'] });
  });

  it('marker and item counts are checked per kind', async () => {
    const file = await jsonl('counts.jsonl', [
      { id: 'v', video: ['v1.mp4', 'v2.mp4'], image: 'a.png', conversations: [h('<image> <video>'), g('a')] },
    ]);
    const [r] = await collect(file, KINDS);
    expect(r.ok ? 'ok' : `${r.reason} ${r.message}`).toBe(
      `video_count_mismatch ${file}:1: sample v: 1 <video> marker(s) but 2 video(s)`,
    );
  });

  it('refuses kinds that cannot be told apart', async () => {
    const file = await jsonl('dup.jsonl', [{ id: 'x', conversations: [h('q'), g('a')] }]);
    await expect(collect(file, [...KINDS, { name: 'clip', marker: '<video>' }])).rejects.toThrow(
      'two media kinds use the marker <video>',
    );
  });
});

function sampleOf(text: string, media: Record<string, string[]>): Sample {
  return {
    id: 's',
    images: media.image ?? [],
    media,
    turns: [
      { role: 'user', text },
      { role: 'assistant', text: 'Red.' },
    ],
    location: { file: 'm.json', index: 0 },
    markersPrepended: false,
    leadingAssistantDropped: false,
  };
}

/** Images 3 slots, videos 5, the plugin's dicom 2 with the marker <dicom> for the token <scan>. */
function mediaTokens(): Record<string, MediaTokenSpec> {
  return {
    image: { id: IMAGE, slots: 3 },
    video: { id: VIDEO, slots: 5 },
    dicom: { id: DICOM, slots: 2, marker: dicom.marker },
  };
}

function build(
  sample: Sample,
  maxLength = 512,
  template: 'vicuna_v1' | 'plain' = 'vicuna_v1',
): ExampleResult {
  return buildExample(sample, {
    tokenizer,
    template,
    mediaTokens: mediaTokens(),
    maxLength,
  });
}

function ok(result: ExampleResult): Example {
  if (!result.ok) throw new Error(result.message);
  return result.example;
}

/** [id, run length] of each placeholder run, in order. */
function runs(ids: Int32Array, placeholders: number[]): [number, number][] {
  const out: [number, number][] = [];
  ids.forEach((id, i) => {
    if (!placeholders.includes(id)) return;
    if (ids[i - 1] === id) out[out.length - 1][1]++;
    else out.push([id, 1]);
  });
  return out;
}

describe('examples with media kinds', () => {
  const mixed = () =>
    sampleOf('<image> then <video>, a scan <dicom> and <image>?', {
      image: ['/a.png', '/b.png'],
      video: ['/v.mp4'],
      dicom: ['/ct.dcm'],
    });

  it("expands each kind's marker to its own run, in text order; the ids are the text's with runs collapsed", () => {
    const e = ok(build(mixed()));
    expect(runs(e.inputIds, [IMAGE, VIDEO, DICOM])).toEqual([
      [IMAGE, 3],
      [VIDEO, 5],
      [DICOM, 2],
      [IMAGE, 3],
    ]);
    expect(e.media).toEqual({ image: ['/a.png', '/b.png'], video: ['/v.mp4'], dicom: ['/ct.dcm'] });
    expect(e.images).toEqual(['/a.png', '/b.png']);
    const collapsed = Array.from(e.inputIds).filter(
      (id, i) => ![IMAGE, VIDEO, DICOM].includes(id) || e.inputIds[i - 1] !== id,
    );
    // The custom marker <dicom> becomes the kind's token text <scan>.
    const text =
      "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image> then <video>, a scan <scan> and <image>? ASSISTANT: Red.</s>";
    expect(collapsed).toEqual(tokenizer.encode(text));
    e.labels.forEach((label, i) => {
      if ([IMAGE, VIDEO, DICOM].includes(e.inputIds[i])) expect(label).toBe(IGNORE_INDEX);
    });
  });

  it('plain keeps every kind of the user turn, in order, and drops its text', () => {
    const e = ok(build(mixed(), 512, 'plain'));
    expect(runs(e.inputIds, [IMAGE, VIDEO, DICOM]).map(([id]) => id)).toEqual([IMAGE, VIDEO, DICOM, IMAGE]);
    expect(tokenizer.decode(Array.from(e.labels.filter((l) => l !== IGNORE_INDEX)))).toBe('Red.\n');
  });

  it('hf with content parts: image markers become image parts, other kinds keep their token text', () => {
    const e = ok(
      buildExample(mixed(), {
        tokenizer,
        template: getTemplate('hf'),
        mediaTokens: mediaTokens(),
        maxLength: 512,
      }),
    );
    // The fixture's llava-hf template renders all images first, then the text (with the video and scan tokens).
    expect(runs(e.inputIds, [IMAGE, VIDEO, DICOM]).map(([id]) => id)).toEqual([IMAGE, IMAGE, VIDEO, DICOM]);
    expect(e.media?.video).toEqual(['/v.mp4']);
  });

  it('truncation never cuts a run: the kind whose run would be cut names the reason', () => {
    const full = ok(build(mixed()));
    const videoStart = full.inputIds.indexOf(VIDEO);
    for (const maxLength of [videoStart + 1, videoStart + 4]) {
      const r = build(mixed(), maxLength);
      expect(r.ok ? 'ok' : r.reason).toBe('video_truncated');
    }
    const r = build(mixed(), full.inputIds.lastIndexOf(IMAGE) - 1);
    expect(r.ok ? 'ok' : r.reason).toBe('image_truncated');
  });

  it('counts per kind: markers against items, and items of a kind with no token', () => {
    const fewer = build(sampleOf('<video> only', { video: ['/v1.mp4', '/v2.mp4'] }));
    expect(fewer.ok ? 'ok' : fewer.message).toBe(
      `m.json[0]: sample s: the rendered conversation holds 1 video token(s) ${VIDEO} but the sample has 2 video(s)`,
    );
    const unknown = build(sampleOf('<audio> hi', { audio: ['/x.wav'] }));
    expect(unknown.ok ? 'ok' : `${unknown.reason} ${unknown.message}`).toBe(
      'audio_count_mismatch m.json[0]: sample s: the sample has 1 audio(s) but no media token is configured for audio (mediaTokens.audio)',
    );
  });

  it('refuses ambiguous media tokens', () => {
    const sample = sampleOf('q', {});
    const opts = { tokenizer, template: 'vicuna_v1' as const, maxLength: 64 };
    expect(() =>
      buildExample(sample, {
        ...opts,
        mediaTokens: { image: { id: IMAGE, slots: 1 }, video: { id: IMAGE, slots: 1 } },
      }),
    ).toThrow('Media kinds share a placeholder id (mediaTokens.image.id 32000, mediaTokens.video.id 32000)');
    expect(() =>
      buildExample(sample, {
        ...opts,
        imageToken: { id: IMAGE, slots: 1 },
        mediaTokens: { image: { id: IMAGE, slots: 1 } },
      }),
    ).toThrow('Give imageToken or mediaTokens.image, not both');
    expect(() => buildExample(sample, { ...opts, mediaTokens: { video: { id: VIDEO, slots: 0 } } })).toThrow(
      'mediaTokens.video.slots must be a positive integer, got 0.',
    );
  });
});

/** Every item is a [1, 2] tensor holding its kind's code and the number in its file name. */
const CODES: Record<string, number> = { image: 1, video: 2, dicom: 3 };
const fillMedia: MediaLoader = async (kind, path) =>
  tf.tensor2d([[CODES[kind], Number(/(\d+)/.exec(path)?.[1] ?? 0)]]);

function itemCodes(batch: MultimodalBatch): Record<string, number[][][]> {
  return Object.fromEntries(
    Object.entries(batch.media ?? {}).map(([name, perSample]) => [
      name,
      perSample.map((items) => items.map((t) => Array.from(t.dataSync()))),
    ]),
  );
}

describe('InstructionDataLoader with media kinds', () => {
  const example = (id: string, media: Record<string, string[]>): Example => ({
    id,
    location: { file: 'mem', index: 0 },
    inputIds: Int32Array.from([1, 5, 6, 7]),
    labels: Int32Array.from([IGNORE_INDEX, IGNORE_INDEX, 6, 7]),
    images: media.image ?? [],
    media,
    supervisedTokens: 2,
    truncated: false,
    retokenizedBoundaries: 0,
    endsWithSpecialToken: true,
  });
  const data = [
    example('a', { image: ['a1.png'], video: ['v2.mp4', 'v3.mp4'] }),
    example('b', { dicom: ['ct4.dcm'] }),
    example('c', {}),
    example('d', { video: ['v5.mp4'] }),
  ];

  it('batch.media holds each kind per sample, under its modality name (mapped where asked)', async () => {
    const loader = new InstructionDataLoader(data, {
      batchSize: 2,
      padTokenId: 0,
      shuffle: false,
      loadMedia: fillMedia,
      modalities: { dicom: 'ct' },
    });
    const first = (await loader.next()) as MultimodalBatch;
    expect(itemCodes(first)).toEqual({
      image: [[[1, 1]], []],
      video: [
        [
          [2, 2],
          [2, 3],
        ],
        [],
      ],
      ct: [[], [[3, 4]]],
    });
    const second = (await loader.next()) as MultimodalBatch;
    expect(itemCodes(second)).toEqual({ image: [[], []], video: [[], [[2, 5]]], ct: [[], []] });
    disposeMultimodalBatch(first);
    disposeMultimodalBatch(second);
    loader.dispose();
  });

  it('state()/restore() replay the same batches; the fingerprint sees other kinds but not image-only media maps', async () => {
    const make = (examples: Example[]) =>
      new InstructionDataLoader(examples, { batchSize: 1, padTokenId: 0, seed: 3, loadMedia: fillMedia });
    const original = make(data);
    const b0 = (await original.next()) as MultimodalBatch;
    const saved = original.state();
    const rest = [];
    for (let b = await original.next(); b; b = await original.next()) {
      rest.push(itemCodes(b));
      disposeMultimodalBatch(b);
    }
    const restored = make(data);
    restored.restore(saved);
    const replay = [];
    for (let b = await restored.next(); b; b = await restored.next()) {
      replay.push(itemCodes(b));
      disposeMultimodalBatch(b);
    }
    expect(replay).toEqual(rest);
    disposeMultimodalBatch(b0);
    const fewerVideos = data.map((e) => (e.id === 'd' ? example('d', { video: [] }) : e));
    expect(() => make(fewerVideos).restore(saved)).toThrow(/fingerprint/);
    // Image-only examples fingerprint the same with or without a media map (checkpoints of earlier versions resume).
    const withMap = [example('i', { image: ['a.png'] })];
    const withoutMap = [{ ...withMap[0], media: undefined }];
    const fingerprint = (examples: Example[]) =>
      new InstructionDataLoader(examples, {
        batchSize: 1,
        padTokenId: 0,
        loadImage: async () => tf.zeros([3, 1, 1]),
      }).state().fingerprint;
    expect(fingerprint(withMap)).toBe(fingerprint(withoutMap));
    original.dispose();
    restored.dispose();
  });

  it('a kind without a loader fails at construction; a failing item names its kind and path; nothing leaks', async () => {
    expect(
      () =>
        new InstructionDataLoader(data, {
          batchSize: 2,
          padTokenId: 0,
          loadImage: async () => tf.zeros([3, 1, 1]),
        }),
    ).toThrow(
      'InstructionDataLoader: the examples hold video items but no loader decodes them: give loadMedia(kind, path) (loadImage decodes images only).',
    );
    const before = tf.memory().numTensors;
    const broken = new InstructionDataLoader(data, {
      batchSize: 4,
      padTokenId: 0,
      shuffle: false,
      loadMedia: async (kind, path) => {
        if (kind === 'dicom') throw new Error('bad header');
        return fillMedia(kind, path);
      },
    });
    await expect(broken.next()).rejects.toThrow('loadMedia(dicom) failed for ct4.dcm: bad header');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('groupByLength counts any kind as media', async () => {
    const loader = new InstructionDataLoader(data, {
      batchSize: 1,
      padTokenId: 0,
      groupByLength: true,
      loadMedia: fillMedia,
    });
    const withMedia = [];
    for (let b = await loader.next(); b; b = await loader.next()) {
      withMedia.push(Object.values(b.media ?? {}).some((perSample) => perSample[0].length > 0));
      disposeMultimodalBatch(b);
    }
    expect(withMedia.filter(Boolean)).toHaveLength(3);
  });
});

describe('files with media kinds → batches, and the validation source', () => {
  const records = (prefix: string) => [
    { id: `${prefix}1`, video: 'v1.mp4', conversations: [h('<video>\nWhat happens?'), g('It spins.')] },
    { id: `${prefix}2`, image: 'a.png', conversations: [h('<image>\nColour?'), g('Red.')] },
    { id: `${prefix}3`, conversations: [h('Hi.'), g('Hello.')] },
    {
      id: `${prefix}4`,
      video: ['v1.mp4', 'v2.mp4'],
      conversations: [h('<video> or <video>?'), g('The first.')],
    },
  ];
  const options = (train: string) => ({
    files: train,
    imageFolder: join(dir, 'media'),
    tokenizer,
    template: 'vicuna_v1' as const,
    mediaTokens: { image: { id: IMAGE, slots: 2 }, video: { id: VIDEO, slots: 3 } },
    maxLength: 128,
    batchSize: 3,
    seed: 7,
    shuffle: true,
    groupByLength: true,
    dropLast: true,
    limit: 2,
    loadMedia: fillMedia,
  });

  it('fromFiles reads every kind from the records and batches it', async () => {
    const train = await jsonl('train-media.jsonl', records('t'));
    const loader = await InstructionDataLoader.fromFiles({
      ...options(train),
      limit: undefined,
      dropLast: false,
    });
    expect(loader.stats.media).toEqual({ image: 1, video: 3 });
    expect(loader.stats.samplesUsed).toBe(4);
    let videos = 0;
    for (let b = await loader.next(); b; b = await loader.next()) {
      videos += (b.media?.video ?? []).flat().length;
      const slots = b.inputIds
        .arraySync()
        .flat()
        .filter((id) => id === VIDEO).length;
      expect(slots).toBe(3 * (b.media?.video ?? []).flat().length);
      disposeMultimodalBatch(b);
    }
    expect(videos).toBe(3);
    loader.dispose();
  });

  it('validationFromFiles: the training options, in file order, every record and batch', async () => {
    const val = await jsonl('val-media.jsonl', records('v'));
    const source = await InstructionDataLoader.validationFromFiles(options('unused-train.jsonl'), val);
    expect(source.state()).toMatchObject({
      shuffle: false,
      groupByLength: false,
      dropLast: false,
      examples: 4,
    });
    expect(source.length).toBe(2);
    const ids: string[] = [];
    for (let b = await source.next(); b; b = await source.next()) {
      for (const row of b.inputIds.arraySync())
        ids.push(
          source.examples.find((e) => Array.from(e.inputIds).every((t, i) => row[i] === t))?.id ?? '?',
        );
      disposeMultimodalBatch(b);
    }
    expect(ids).toEqual(['v1', 'v2', 'v3', 'v4']);
    // The same tokenizer, template and media tokens as training: the examples are what loading the file gives.
    const direct = await loadInstructionData({ ...options(val), limit: undefined });
    expect(source.examples.map((e) => Array.from(e.inputIds))).toEqual(
      direct.examples.map((e) => Array.from(e.inputIds)),
    );
    source.dispose();
  });
});
