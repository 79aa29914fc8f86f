import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../tokenizer.js';
import { trainBpe } from './bpe.js';
import { countPieces, PieceSplitter, pieceText } from './pieces.js';
import { trainTokenizer } from './train.js';

const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const SHAPES = ['circle', 'square', 'triangle', 'star'];

/** Training text as vicuna_v1 renders it: answers follow "ASSISTANT:" after a space. */
function corpus(): string[] {
  const texts: string[] = [];
  for (const colour of COLOURS)
    for (const shape of SHAPES)
      texts.push(
        `USER: <image>\nWhat colour is the ${shape}? ASSISTANT: ${colour}</s>USER: How many shapes are there? ASSISTANT: ${COLOURS.indexOf(colour) + 1}</s>`,
      );
  return texts;
}

describe('trainBpe', () => {
  it('learns the merges of a hand-worked example in order (most frequent pair, ties to smaller ids)', () => {
    // "hug"×10 "pug"×5 "pun"×12 "bun"×4 "hugs"×5 (the Hugging Face course example).
    const pieceCounts = new Map([
      ['hug', 10],
      ['pug', 5],
      ['pun', 12],
      ['bun', 4],
      ['hugs', 5],
    ]);
    const { tokens, merges } = trainBpe({
      pieceCounts,
      alphabet: ['b', 'g', 'h', 'n', 'p', 's', 'u'],
      reservedIds: 0,
      vocabSize: 10,
      minFrequency: 1,
    });
    expect(merges).toEqual([
      ['u', 'g'],
      ['u', 'n'],
      ['h', 'ug'],
    ]);
    expect(tokens).toEqual(['ug', 'un', 'hug']);
  });

  it('stops at minFrequency and at the vocabulary size', () => {
    const pieceCounts = new Map([
      ['ab', 3],
      ['cd', 1],
    ]);
    const base = { pieceCounts, alphabet: ['a', 'b', 'c', 'd'], reservedIds: 2 };
    expect(trainBpe({ ...base, vocabSize: 100, minFrequency: 2 }).tokens).toEqual(['ab']);
    expect(trainBpe({ ...base, vocabSize: 100, minFrequency: 1 }).tokens).toEqual(['ab', 'cd']);
    expect(trainBpe({ ...base, vocabSize: 6, minFrequency: 1 }).tokens).toEqual([]);
    expect(() =>
      trainBpe({ ...base, pieceCounts: new Map([['ax', 1]]), vocabSize: 9, minFrequency: 1 }),
    ).toThrow(/symbol "x" of "ax" is not in the alphabet/);
  });
});

describe('PieceSplitter', () => {
  it('cuts special tokens out first and keeps the leading space on words', () => {
    const splitter = new PieceSplitter(['<image>', '</s>']);
    const pieces = splitter.pieces('USER: <image>\nWhat is it? ASSISTANT: red</s>');
    expect(pieces.map(pieceText)).toEqual([
      'USER',
      ':',
      ' ',
      '\n',
      'What',
      ' is',
      ' it',
      '?',
      ' ASSISTANT',
      ':',
      ' red',
    ]);
    expect(countPieces(['a a', 'a'], splitter)).toEqual(
      new Map([
        ['a', 2],
        ['Ġa', 1],
      ]),
    );
  });
});

describe('trainTokenizer', () => {
  for (const model of ['bpe', 'wordlevel'] as const) {
    it(`${model}: every word of the rendered corpus, with its leading space, is one token`, async () => {
      const { tokenizer, report, tokenizerJson, tokenizerConfig } = trainTokenizer(corpus(), {
        model,
        vocabSize: 400,
        additionalSpecialTokens: ['<image>'],
        minFrequency: 1,
        chatTemplate: '{{ messages[0].content }}',
      });
      expect(report.split).toEqual({ occurrences: 0, distinct: 0, share: 0 });
      expect(report.words.distinct).toBeGreaterThan(COLOURS.length + SHAPES.length);
      for (const word of [...COLOURS, ...SHAPES].map((w) => ` ${w}`))
        expect(tokenizer.encode(word, { addSpecialTokens: false }), word).toHaveLength(1);
      // Ids: unk, bos, eos, pad, then the media marker; BOS is added, specials encode as one id.
      expect(['<unk>', '<s>', '</s>', '<pad>', '<image>'].map((t) => tokenizer.tokenToId(t))).toEqual([
        0, 1, 2, 3, 4,
      ]);
      const text = 'USER: <image>\nWhat colour is the star? ASSISTANT: purple</s>';
      const ids = tokenizer.encode(text);
      expect(ids[0]).toBe(1);
      expect(ids.filter((id) => id === 4)).toHaveLength(1);
      expect(tokenizer.decode(ids.slice(1))).toBe(text);
      // Text outside the corpus still round-trips through the byte symbols.
      expect(tokenizer.decode(tokenizer.encode('Zebra #42 ~x', { addSpecialTokens: false }))).toBe(
        'Zebra #42 ~x',
      );
      expect(tokenizer.vocabSize).toBe(report.vocabSize);
      expect(report.vocabSize).toBeLessThanOrEqual(400);

      // The written folder loads back through Tokenizer.fromDir with the same ids and template.
      const dir = await mkdtemp(join(tmpdir(), 'vistune-tok-train-'));
      await Tokenizer.fromJSON(tokenizerJson, tokenizerConfig).saveTo(dir);
      const loaded = await Tokenizer.fromDir(dir);
      expect(loaded.encode(text)).toEqual(ids);
      expect(loaded.specialTokens).toMatchObject({
        bosToken: '<s>',
        eosToken: '</s>',
        padToken: '<pad>',
        unkToken: '<unk>',
      });
      expect(loaded.specialTokens.additionalSpecialTokens).toEqual(['<image>']);
      expect(loaded.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('hi');
    });
  }

  it('reports the words a too-small vocabulary splits, most frequent first', () => {
    const { report, tokenizer } = trainTokenizer(corpus(), {
      model: 'wordlevel',
      vocabSize: 120,
      minFrequency: 1,
    });
    const room = 120 - report.specialTokens.length - report.alphabetSize;
    expect(report.vocabSize).toBe(120);
    expect(report.words.distinct - report.split.distinct).toBeLessThanOrEqual(room);
    expect(report.split.share).toBeGreaterThan(0);
    expect(report.split.share).toBeLessThan(1);
    const [first] = report.splitExamples;
    expect(tokenizer.encode(first.text, { addSpecialTokens: false })).toHaveLength(first.tokens);
    expect(first.tokens).toBeGreaterThan(1);
  });

  it('keeps all 256 bytes with allBytes, and refuses a vocabulary smaller than specials + alphabet', () => {
    expect(trainTokenizer(['aa'], { vocabSize: 300, allBytes: true }).report.alphabetSize).toBe(256);
    expect(() => trainTokenizer(['aa'], { vocabSize: 50 })).toThrow(
      /vocab size 50 is too small: .* take 101 ids/,
    );
    expect(() => trainTokenizer(['aa'], { vocabSize: 300, specialTokens: { eos: '<s>' } })).toThrow(
      /four different non-empty strings/,
    );
  });
});
