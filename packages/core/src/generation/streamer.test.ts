import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { DecodeStream } from './streamer.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const cases = (
  JSON.parse(await readFile(`${fixtureDir}/cases.json`, 'utf8')) as {
    cases: { expected: { greedy_ids: number[] } }[];
  }
).cases;

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(fixtureDir);
});

function streamAll(ids: readonly number[], decode: (ids: readonly number[]) => string): string[] {
  const stream = new DecodeStream(decode);
  const pieces = ids.map((id) => stream.put(id));
  pieces.push(stream.flush());
  expect(stream.text).toBe(pieces.join(''));
  return pieces;
}

describe('DecodeStream', () => {
  it('holds back a character split over byte-fallback tokens until its last byte', () => {
    const ids = tokenizer.encode('hi 🙂 ok', { addSpecialTokens: false });
    expect(ids.slice(0, 6)).toEqual([7251, 29871, 243, 162, 156, 133]); // ▁hi ▁ <0xF0> <0x9F> <0x99> <0x82>
    const pieces = streamAll(ids, (part) => tokenizer.decode(part));
    expect(pieces.slice(0, 6)).toEqual(['hi', ' ', '', '', '', '🙂']);
    expect(pieces.join('')).toBe('hi 🙂 ok');
  });

  it('concatenates to the full decode, with and without special tokens', () => {
    const texts = [
      "Décris l'image, s'il te plaît. 坂道 🙂🙂 fin.",
      '  two  spaces\nnew line\t tab',
      '日本語のテキスト',
    ];
    for (const text of texts) {
      const ids = tokenizer.encode(text);
      for (const skipSpecialTokens of [false, true]) {
        const decode = (part: readonly number[]) => tokenizer.decode(part, { skipSpecialTokens });
        const pieces = streamAll(ids, decode);
        expect(pieces.join('')).toBe(decode(ids));
        for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
      }
    }
    for (const { expected } of cases) {
      const decode = (part: readonly number[]) => tokenizer.decode(part);
      expect(streamAll(expected.greedy_ids, decode).join('')).toBe(decode(expected.greedy_ids));
    }
  });

  it('flushes an unfinished byte sequence as U+FFFD', () => {
    const stream = new DecodeStream((part) => tokenizer.decode(part));
    expect(stream.put(7251)).toBe('hi');
    expect(stream.put(243)).toBe('');
    expect(stream.put(162)).toBe('');
    expect(stream.flush()).toBe('\uFFFD');
    expect(stream.flush()).toBe('');
  });

  it('keeps word-boundary rules of the decoder (leading-space strip, cleanup of " .")', () => {
    // Toy decoder: "_" marks a space, the first space of the text is dropped and " ." becomes ".".
    const vocab = ['_Hello', '_world', '_.', '_again'];
    const decode = (ids: readonly number[]) =>
      ids
        .map((id) => vocab[id])
        .join('')
        .replaceAll('_', ' ')
        .replace(/^ /, '')
        .replaceAll(' .', '.');
    const pieces = streamAll([0, 1, 2, 3], decode);
    expect(pieces).toEqual(['Hello', ' world', '.', ' again', '']);
  });
});
