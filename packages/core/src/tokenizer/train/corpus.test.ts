import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { VICUNA_V1_SYSTEM } from '../../data/templates.js';
import { register } from '../../register.js';
import { createRegistry } from '../../registry/registry.js';
import type { Registry } from '../../registry/types.js';
import { trainTokenizerOnData } from './corpus.js';

let dir = '';
let registry: Registry;

const record = (id: number, question: string, answer: string) => ({
  id: String(id),
  image: `${id}.png`,
  conversations: [
    { from: 'human', value: `<image>\n${question}` },
    { from: 'gpt', value: answer },
  ],
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-tok-corpus-'));
  const records = [
    record(1, 'What colour is the star?', 'crimson'),
    record(2, 'What colour is the circle?', 'crimson'),
    record(3, 'What colour is the square?', 'teal'),
    record(4, 'What colour is the star?', 'teal'),
    // Two assistant turns in a row: the reader refuses it.
    {
      id: '5',
      conversations: [
        { from: 'human', value: 'hi' },
        { from: 'gpt', value: 'a' },
        { from: 'gpt', value: 'b' },
      ],
    },
  ];
  await writeFile(join(dir, 'train.json'), JSON.stringify(records));
  registry = createRegistry();
  register(registry);
  for (const [name, marker] of [
    ['image', '<image>'],
    ['points', '<points>'],
  ])
    registry.add({
      kind: 'media',
      name,
      about: `${name} items`,
      schema: z.object({}),
      create: () => ({ name, marker, extensions: [`.${name}`] }),
    });
});

describe('trainTokenizerOnData', () => {
  it('learns the answers as the template renders them (after "ASSISTANT:" with a space) and every media marker', async () => {
    const trained = await trainTokenizerOnData({
      files: [join(dir, 'train.json')],
      registry,
      template: 'vicuna_v1',
      systemPrompt: '',
      model: 'wordlevel',
      vocabSize: 300,
    });
    const { tokenizer, corpus, mediaTokenIds, report } = trained;
    expect(corpus).toMatchObject({ samples: 4, skipped: 1 });
    expect(corpus.skipReasons[0]).toMatch(/sample 5: turn 2 is assistant where user was expected/);
    expect(mediaTokenIds).toEqual({ image: 4, points: 5 });
    for (const word of [' crimson', ' teal', ' ASSISTANT', 'USER', ' colour'])
      expect(tokenizer.encode(word, { addSpecialTokens: false }), word).toHaveLength(1);
    // Without the leading space the answer word was never seen (minFrequency 2 keeps only repeated pieces).
    expect(tokenizer.encode('crimson', { addSpecialTokens: false }).length).toBeGreaterThan(1);
    // Only the words seen once split (minFrequency 2): 2 of the 32 word occurrences.
    expect(report.splitExamples.map((w) => w.text).sort()).toEqual([' circle', ' square']);
    expect(report.split.share).toBeCloseTo(2 / 32);
    // The chat template renders the generation prompt the model was trained on.
    expect(
      tokenizer.applyChatTemplate(
        [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What colour is the star?' }] }],
        { addGenerationPrompt: true },
      ),
    ).toBe('USER: <image>\nWhat colour is the star? ASSISTANT:');
  });

  it("learns the template's default system prompt when none is given (it is part of every sample)", async () => {
    const { tokenizer } = await trainTokenizerOnData({
      files: [join(dir, 'train.json')],
      registry,
      model: 'wordlevel',
      vocabSize: 400,
    });
    const ids = tokenizer.encode(VICUNA_V1_SYSTEM, { addSpecialTokens: false });
    expect(ids.length).toBeLessThan(30);
  });

  it("chatml: the template's tokens are special and <|im_end|> is the EOS", async () => {
    const { tokenizer } = await trainTokenizerOnData({
      files: [join(dir, 'train.json')],
      registry,
      template: 'chatml',
      model: 'bpe',
      vocabSize: 200,
      extraSpecialTokens: ['[SEG]'],
    });
    expect(tokenizer.specialTokens.eosToken).toBe('<|im_end|>');
    expect(tokenizer.specialTokens.additionalSpecialTokens).toEqual([
      '<image>',
      '<points>',
      '<|im_start|>',
      '[SEG]',
    ]);
    expect(tokenizer.encode('<|im_start|>user\n', { addSpecialTokens: false })[0]).toBe(6);
  });

  it('names the way out for a template without a Jinja chat template, and for unreadable data', async () => {
    await expect(
      trainTokenizerOnData({ files: [join(dir, 'train.json')], registry, template: 'hf', vocabSize: 300 }),
    ).rejects.toThrow(/template 'hf' has no built-in Jinja chat template .*--chat-template FILE/);
    await writeFile(join(dir, 'bad.jsonl'), '{"id": "x"}\n');
    await expect(
      trainTokenizerOnData({ files: [join(dir, 'bad.jsonl')], registry, vocabSize: 300 }),
    ).rejects.toThrow(/none of the records of .*bad.jsonl could be rendered/);
  });
});
