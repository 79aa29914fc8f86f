// Mutated LLaVA JSON / JSONL files: reading them yields samples or named skips, and anything thrown is a plain
// Error naming the file — never a TypeError or RangeError from deep inside.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSamples } from './readers.js';

const records = [
  {
    id: 'a',
    image: 'a.png',
    conversations: [
      { from: 'human', value: '<image>\nWhat?' },
      { from: 'gpt', value: 'A cube.' },
    ],
  },
  {
    id: 'b',
    conversations: [
      { from: 'human', value: 'Hi' },
      { from: 'gpt', value: 'Hello' },
    ],
  },
  {
    id: 'c',
    images: ['x.png', 'y.png'],
    conversations: [
      { from: 'human', value: '<image><image> same?' },
      { from: 'gpt', value: 'no' },
    ],
  },
];

/** xorshift32: the same mutations on every run. */
function rng(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function mutate(bytes: Buffer, random: () => number): Buffer {
  const out = Buffer.from(bytes);
  const kind = Math.floor(random() * 4);
  if (kind === 0) return out.subarray(0, Math.floor(random() * out.length)); // truncated
  if (kind === 1) {
    for (let i = 0; i < 1 + random() * 4; i++)
      out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
    return out;
  }
  const at = Math.floor(random() * out.length);
  const junk = ['null', '[]', '{}', '"', '\\', ',', '0', '\u00ff', '{"id":7}', '\n'][
    Math.floor(random() * 10)
  ];
  return kind === 2
    ? Buffer.concat([out.subarray(0, at), Buffer.from(junk, 'latin1'), out.subarray(at)])
    : Buffer.concat([out.subarray(0, at), out.subarray(at + Math.floor(random() * 20))]);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-data-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('data files fuzz', () => {
  it.each([
    ['jsonl', Buffer.from(records.map((r) => JSON.stringify(r)).join('\n'))],
    ['json', Buffer.from(JSON.stringify(records, null, 1))],
  ])('mutated %s files give samples, named skips or Errors naming the file', async (ext, base) => {
    const random = rng(ext === 'json' ? 7 : 11);
    for (let i = 0; i < 150; i++) {
      const file = join(dir, `case-${i}.${ext}`);
      await writeFile(file, mutate(base, random));
      try {
        for await (const result of readSamples(file, { imageFolder: dir })) {
          if (!result.ok) expect(result.reason).toMatch(/^[a-z0-9_]+$/);
        }
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(TypeError);
        expect(err).not.toBeInstanceOf(RangeError);
        expect((err as Error).message).toContain(file);
      }
    }
  });

  it('a missing data file names the path and where it comes from', async () => {
    const file = join(dir, 'nope.json');
    const read = async () => {
      for await (const _ of readSamples(file)) break;
    };
    await expect(read()).rejects.toThrow(`data file not found: ${file} (check the recipe's data.train`);
  });
});
