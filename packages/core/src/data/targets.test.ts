// Head targets through the data pipeline: a reader takes them from each record, examples are checked to hold
// one trigger token per target (truncation drops the cut ones), and the loader puts them in batch.headTargets.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadInstructionData } from './dataset.js';
import { type Example, IGNORE_INDEX } from './examples.js';
import { disposeMultimodalBatch, InstructionDataLoader } from './loader.js';
import type { HeadTargetsReader } from './types.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

let dir: string;
let tokenizer: Tokenizer;
let seg: number;
let file: string;

const turns = (q: string, a: string) => [
  { from: 'human', value: q },
  { from: 'gpt', value: a },
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  [seg] = tokenizer.addTokens(['[SEG]'], { special: true }) as [number];
  dir = await mkdtemp(join(tmpdir(), 'vistune-targets-'));
  const records = [
    { id: 'two', conversations: turns('Segment both.', 'Sure, [SEG] and [SEG].'), masks: ['m1', 'm2'] },
    { id: 'plain', conversations: turns('Say hi.', 'Hi.') },
    { id: 'wrong', conversations: turns('Segment it.', 'Sure, [SEG].'), masks: ['x', 'y'] },
    {
      id: 'cut',
      conversations: turns('Segment.', `[SEG] ${'word '.repeat(80)}[SEG]`),
      masks: ['first', 'second'],
    },
    { id: 'one', conversations: turns('Segment it.', 'Sure, [SEG].'), masks: ['m3'] },
  ];
  file = join(dir, 'train.json');
  await writeFile(file, JSON.stringify(records));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const reader = (): HeadTargetsReader => ({
  read: (record) => {
    const masks = (record as { masks?: unknown[] }).masks;
    return masks ? { seg_head: masks } : undefined;
  },
  triggers: { seg_head: seg },
});

const options = () => ({
  files: file,
  tokenizer,
  template: 'vicuna_v1' as const,
  imageToken: { id: 32000, slots: 4 },
  maxLength: 60,
  maxSkipFraction: 1,
  targets: reader(),
});

describe('head targets in instruction data', () => {
  it('attaches one target per trigger, skips mismatches, drops the targets of truncated triggers', async () => {
    const { examples, stats } = await loadInstructionData(options());
    expect(examples.map((e) => e.id)).toEqual(['two', 'plain', 'cut', 'one']);
    const byId = new Map(examples.map((e) => [e.id, e]));
    expect(byId.get('two')?.targets).toEqual({ seg_head: ['m1', 'm2'] });
    expect(byId.get('plain')?.targets).toBeUndefined();
    const cut = byId.get('cut') as Example;
    expect(cut.truncated).toBe(true);
    expect(Array.from(cut.inputIds).filter((id) => id === seg)).toHaveLength(1);
    expect(cut.targets).toEqual({ seg_head: ['first'] });
    expect(stats.skipped.targets_mismatch).toBe(1);
    expect(stats.messages).toEqual([
      `targets_mismatch: ${file}[2]: sample wrong: 2 targets for head "seg_head" but 1 trigger token(s) ${seg} in the ids`,
    ]);
    // [SEG] is supervised like any answer token.
    const two = byId.get('two') as Example;
    const at = Array.from(two.inputIds).indexOf(seg);
    expect(two.labels[at]).toBe(seg);
    expect(two.labels[0]).toBe(IGNORE_INDEX);
  });

  it('targets of a head the reader does not name are a mismatch', async () => {
    const read = loadInstructionData({
      ...options(),
      targets: { read: () => ({ other: [1] }), triggers: { seg_head: seg } },
    });
    await expect(read).rejects.toThrow(
      /No usable training sample[\s\S]*targets_mismatch 5[\s\S]*targets for head "other", which has no trigger token/,
    );
  });

  it('the loader concatenates targets sample-major into batch.headTargets', async () => {
    const loader = await InstructionDataLoader.fromFiles({
      ...options(),
      batchSize: 4,
      shuffle: false,
      loadImage: async () => tf.zeros([3, 4, 4]) as tf.Tensor3D,
    });
    const batch = (await loader.next()) as NonNullable<Awaited<ReturnType<typeof loader.next>>>;
    expect(batch.headTargets).toEqual({ seg_head: ['m1', 'm2', 'first', 'm3'] });
    // One target per trigger occurrence of the batch, which is what MultimodalModel.forward checks.
    const triggers = batch.inputIds
      .arraySync()
      .flat()
      .filter((id) => id === seg).length;
    expect(triggers).toBe(4);
    disposeMultimodalBatch(batch);
    loader.dispose();
  });

  it('a batch without any targets has no headTargets; tensor targets are disposed with the batch', async () => {
    const base: Example = {
      id: 'a',
      location: { file: 'mem', index: 0 },
      inputIds: Int32Array.from([1, 5, seg, 2]),
      labels: Int32Array.from([IGNORE_INDEX, 5, seg, 2]),
      images: [],
      supervisedTokens: 3,
      truncated: false,
      retokenizedBoundaries: 0,
      endsWithSpecialToken: true,
    };
    const plain = new InstructionDataLoader([base], {
      batchSize: 1,
      padTokenId: 0,
      loadImage: async () => tf.zeros([3, 1, 1]) as tf.Tensor3D,
    });
    const b1 = (await plain.next()) as NonNullable<Awaited<ReturnType<typeof plain.next>>>;
    expect(b1.headTargets).toBeUndefined();
    disposeMultimodalBatch(b1);
    const mask = tf.ones([2, 2]);
    const withTensor = new InstructionDataLoader([{ ...base, targets: { seg_head: [mask] } }], {
      batchSize: 1,
      padTokenId: 0,
      loadImage: async () => tf.zeros([3, 1, 1]) as tf.Tensor3D,
    });
    const b2 = (await withTensor.next()) as NonNullable<Awaited<ReturnType<typeof withTensor.next>>>;
    expect(b2.headTargets?.seg_head?.[0]).toBe(mask);
    disposeMultimodalBatch(b2);
    expect(mask.isDisposed).toBe(true);
  });
});
