import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadInstructionData } from './dataset.js';
import { IGNORE_INDEX } from './examples.js';
import { disposeMultimodalBatch, InstructionDataLoader } from './loader.js';
import { formatDataStats } from './stats.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const IMAGE = 32000;

let dir: string;
let tokenizer: Tokenizer;
let file: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  dir = await mkdtemp(join(tmpdir(), 'vistune-dataset-'));
  await mkdir(join(dir, 'images'));
  for (const name of ['a.png', 'b.png']) await writeFile(join(dir, 'images', name), 'not decoded here');
  const turns = (q: string, a: string) => [
    { from: 'human', value: q },
    { from: 'gpt', value: a },
  ];
  const records = [
    { id: 'ok1', image: 'a.png', conversations: turns('<image>\nWhat is it?', 'A red cube.') },
    { id: 'ok2', conversations: turns('Say hi.', 'Hi.') },
    { instruction: 'Describe.', input: { image: 'b.png' }, output: 'A blue ball.' },
    { id: 'missing', image: 'zzz.png', conversations: turns('<image>\nWhat?', 'Nothing.') },
    '{"id": "cut',
    { id: 'twice', image: 'a.png', conversations: turns('<image> <image>', 'Two?') },
    { id: 'long', image: 'a.png', conversations: turns(`${'word '.repeat(60)}<image>`, 'Late image.') },
  ];
  file = join(dir, 'train.jsonl');
  await writeFile(file, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const common = () => ({
  files: file,
  imageFolder: join(dir, 'images'),
  tokenizer,
  template: 'vicuna_v1' as const,
  imageToken: { id: IMAGE, slots: 4 },
  maxLength: 80,
});

describe('loadInstructionData', () => {
  it('counts every record: used, skipped per reason with file:line and sample id, tokens and notes', async () => {
    const { examples, stats } = await loadInstructionData({ ...common(), maxSkipFraction: 1 });
    expect(examples.map((e) => e.id)).toEqual(['ok1', 'ok2', 'train.jsonl:3']);
    expect(stats.samplesRead).toBe(7);
    expect(stats.samplesUsed).toBe(3);
    expect(stats.skipped).toMatchObject({
      image_missing: 1,
      invalid_json: 1,
      image_count_mismatch: 1,
      image_truncated: 1,
      invalid_record: 0,
    });
    expect(stats.messages).toEqual([
      `image_missing: ${file}:4: sample missing: no file at ${join(dir, 'images', 'zzz.png')}`,
      expect.stringMatching(new RegExp(`^invalid_json: ${file}:5: `)),
      `image_count_mismatch: ${file}:6: sample twice: 2 <image> marker(s) but 1 image(s)`,
      expect.stringMatching(
        new RegExp(
          `^image_truncated: ${file}:7: sample long: \\d+ tokens with images expanded; maxLength 80`,
        ),
      ),
    ]);
    expect(stats.markersPrepended).toBe(1);
    expect(stats.images).toBe(2);
    expect(stats.supervisedTokens).toBe(
      examples.reduce((n, e) => n + e.labels.filter((l) => l !== IGNORE_INDEX).length, 0),
    );
    expect(stats.totalTokens).toBe(examples.reduce((n, e) => n + e.inputIds.length, 0));
    expect(stats.withoutTerminator).toBe(0);
    expect(formatDataStats(stats)).toMatch(
      /^samples: 7 read, 3 used, 4 skipped \(invalid_json 1, image_count_mismatch 1, image_missing 1, image_truncated 1\)/,
    );
    // The triplet's answer, with its terminator, is what gets supervised.
    const triplet = examples[2];
    expect(tokenizer.decode(Array.from(triplet.labels.filter((l) => l !== IGNORE_INDEX)))).toBe(
      'A blue ball.</s>',
    );
  });

  it('throws past maxSkipFraction (default 0.2) with the stats, and reads at most `limit` records', async () => {
    await expect(loadInstructionData(common())).rejects.toThrow(
      /4 of 7 records were skipped, more than maxSkipFraction 0.2; fix the data or raise maxSkipFraction:\nsamples: 7 read/,
    );
    const { stats } = await loadInstructionData({ ...common(), limit: 3 });
    expect(stats.samplesRead).toBe(3);
    expect(stats.samplesUsed).toBe(3);
  });

  it('InstructionDataLoader.fromFiles: tokenizer pad id, stats, and batches the model can take', async () => {
    const loader = await InstructionDataLoader.fromFiles({
      ...common(),
      maxSkipFraction: 1,
      batchSize: 2,
      shuffle: false,
      loadImage: async () => tf.zeros([3, 8, 8]) as tf.Tensor3D,
    });
    expect(loader.stats.samplesUsed).toBe(3);
    expect(loader.length).toBe(2);
    const batch = (await loader.next())!;
    const ids = batch.inputIds.arraySync();
    const mask = batch.attentionMask!.arraySync();
    const [a, b] = loader.examples;
    expect(ids[0].slice(0, a.inputIds.length)).toEqual(Array.from(a.inputIds));
    // ok2 is shorter (no image): right-padded with <pad> = 32001.
    expect(ids[1].slice(b.inputIds.length)).toEqual(new Array(ids[1].length - b.inputIds.length).fill(32001));
    expect(mask[1].reduce((s, m) => s + m, 0)).toBe(b.inputIds.length);
    expect(batch.media!.image.map((l) => l.length)).toEqual([1, 0]);
    disposeMultimodalBatch(batch);
    loader.dispose();
  });
});
