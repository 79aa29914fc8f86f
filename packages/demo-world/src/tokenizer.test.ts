import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoxCodec } from './box-codec.js';
import { RECORD_KINDS, recordsForScene, type WorldRecord } from './instructions.js';
import { createRng } from './random.js';
import { generateLayout } from './scene.js';
import {
  splitWorldPieces,
  vocabularyFromRecords,
  worldVocabulary,
  writeWorldTokenizer,
} from './tokenizer.js';

let dir: string;
let tokenizer: Tokenizer;

const records: WorldRecord[] = Array.from({ length: 150 }, (_, i) => {
  const rng = createRng('tokenizer-test', i);
  const layout = generateLayout(rng, { imageSize: 64 });
  return recordsForScene(layout, rng, {
    image: `${i}.png`,
    idPrefix: `${i}`,
    kinds: RECORD_KINDS,
    questionsPerImage: 6,
    codec: new BoxCodec(),
  });
}).flat();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'world-tokenizer-'));
  await writeWorldTokenizer(dir);
  tokenizer = await Tokenizer.fromDir(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const chatOf = (record: WorldRecord): { role: string; content: string }[] =>
  record.conversations.map((turn) => ({
    role: turn.from === 'human' ? 'user' : 'assistant',
    content: turn.value,
  }));

describe('world tokenizer', () => {
  it('loads through core with the special tokens at ids 0-4 and a small vocabulary', async () => {
    expect(tokenizer.specialTokens).toMatchObject({
      bosToken: '<s>',
      eosToken: '</s>',
      unkToken: '<unk>',
      padToken: '<pad>',
    });
    expect(['<unk>', '<s>', '</s>', '<pad>', '<image>'].map((t) => tokenizer.tokenToId(t))).toEqual([
      0, 1, 2, 3, 4,
    ]);
    expect(tokenizer.vocabSize).toBe(worldVocabulary().length + 5);
    expect(tokenizer.vocabSize).toBeLessThan(400);
    const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { type: string };
    };
    expect(json.model.type).toBe('BPE');
  });

  it('the world vocabulary alone covers every piece of generated text (no character fallback)', () => {
    const vocabulary = new Set(worldVocabulary());
    const missing = vocabularyFromRecords(records).filter((piece) => !vocabulary.has(piece));
    expect(missing).toEqual([]);
  });

  it("vocabularyFromRecords adds a turn's first word with the space the chat template puts before it", () => {
    const record = {
      id: 'x',
      image: 'x.png',
      conversations: [
        { from: 'human', value: '<image>\nName it.' },
        { from: 'gpt', value: 'crimson star' },
      ],
    } as unknown as WorldRecord;
    const pieces = vocabularyFromRecords([record]);
    expect(pieces).toContain(' crimson');
    expect(pieces).toContain('crimson');
    expect(pieces).not.toContain(' \n');
  });

  it('encodes one id per piece: words with their leading space, numbers whole, <image> as one token', () => {
    const ids = tokenizer.encode('<image>\nWhere is the red star? [4,13,10,20]', { addSpecialTokens: false });
    expect(ids.map((id) => tokenizer.idToToken(id))).toEqual([
      '<image>',
      '\n',
      'Where',
      ' is',
      ' the',
      ' red',
      ' star',
      '?',
      ' [',
      '4',
      ',',
      '13',
      ',',
      '10',
      ',',
      '20',
      ']',
    ]);
    expect(tokenizer.encode('red')[0]).toBe(tokenizer.bosTokenId);
  });

  it('round-trips every record text and every rendered chat exactly', () => {
    for (const record of records) {
      for (const turn of record.conversations) {
        const ids = tokenizer.encode(turn.value, { addSpecialTokens: false });
        expect(ids).not.toContain(0);
        expect(tokenizer.decode(ids)).toBe(turn.value);
      }
      const chat = tokenizer.applyChatTemplate(chatOf(record));
      expect(tokenizer.decode(tokenizer.encode(chat, { addSpecialTokens: false }))).toBe(chat);
    }
    expect(records.length).toBeGreaterThan(500);
  });

  it('falls back to characters for unseen ASCII words (still exact) and <unk> beyond ASCII', () => {
    const text = 'Zebra xylophone 12345 ~{}';
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    // No multi-character piece of this text is in the vocabulary, so each character becomes its own token.
    expect(splitWorldPieces(text).filter((p) => p.length > 1 && worldVocabulary().includes(p))).toEqual([]);
    expect(ids.map((id) => tokenizer.idToToken(id))).toEqual([...text]);
    expect(tokenizer.decode(ids)).toBe(text);
    expect(tokenizer.decode(tokenizer.encode('café', { addSpecialTokens: false }))).toBe('caf<unk>');
  });

  it('renders the vicuna-style chat template, training and generation prompts aligned', () => {
    const messages = [
      { role: 'user', content: '<image>\nWhat colour is the circle?' },
      { role: 'assistant', content: 'red' },
      { role: 'user', content: 'How many objects are there?' },
    ];
    expect(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(
      'USER: <image>\nWhat colour is the circle? ASSISTANT: red</s>USER: How many objects are there? ASSISTANT:',
    );
    expect(
      tokenizer.applyChatTemplate([
        { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Hi' }] },
      ]),
    ).toBe('USER: <image>\nHi ');
    // The prompt's tokens are a prefix of the trained sequence, so generation continues exactly where training did.
    const prompt = tokenizer.encode(
      tokenizer.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true }),
    );
    const full = tokenizer.encode(tokenizer.applyChatTemplate(messages.slice(0, 2)));
    expect(full.slice(0, prompt.length)).toEqual(prompt);
    expect(full.slice(prompt.length).map((id) => tokenizer.idToToken(id))).toEqual([' red', '</s>']);
  });
});
