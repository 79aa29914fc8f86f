import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatContentPart } from './chat-template.js';
import { Tokenizer } from './tokenizer.js';
import type { TokenizerConfigJSON, TokenizerJSON } from './tokenizer-files.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

interface FixtureCase {
  name: string;
  question: string;
  prompt: string;
  images: string[];
  input_ids: number[];
  expected: { greedy_ids: number[]; greedy_text: string };
}
interface FixtureCases {
  image_seq_length: number;
  image_token_index: number;
  cases: FixtureCase[];
}

const fixture = JSON.parse(await readFile(join(fixtureDir, 'cases.json'), 'utf8')) as FixtureCases;
const tokenizerJson = JSON.parse(await readFile(join(fixtureDir, 'tokenizer.json'), 'utf8')) as TokenizerJSON;
const tokenizerConfig = JSON.parse(
  await readFile(join(fixtureDir, 'tokenizer_config.json'), 'utf8'),
) as TokenizerConfigJSON;

let tokenizer: Tokenizer;
let scratchDir: string;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  scratchDir = await mkdtemp(join(tmpdir(), 'vistune-tokenizer-'));
});
afterAll(async () => {
  await rm(scratchDir, { recursive: true, force: true });
});

describe('Tokenizer on the tiny-llava-hf fixture', () => {
  it('reads special tokens and vocabulary size', () => {
    expect(tokenizer.vocabSize).toBe(32002);
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosTokenId).toBe(2);
    expect(tokenizer.eosTokenIds).toEqual([2]);
    expect(tokenizer.padTokenId).toBe(32001);
    expect(tokenizer.tokenToId('<image>')).toBe(fixture.image_token_index);
    expect(tokenizer.idToToken(13)).toBe('<0x0A>');
    expect(tokenizer.specialTokens).toEqual({
      bosToken: '<s>',
      eosToken: '</s>',
      unkToken: '<unk>',
      padToken: '<pad>',
      additionalSpecialTokens: [],
    });
  });

  for (const testCase of fixture.cases) {
    it(`${testCase.name}: chat template, input_ids and greedy_text match the fixture`, () => {
      const content: ChatContentPart[] = [
        ...testCase.images.map((): ChatContentPart => ({ type: 'image' })),
        { type: 'text', text: testCase.question },
      ];
      const prompt = tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true });
      expect(prompt).toBe(testCase.prompt);

      const expanded = prompt.replaceAll('<image>', '<image>'.repeat(fixture.image_seq_length));
      expect(tokenizer.encode(expanded)).toEqual(testCase.input_ids);

      expect(tokenizer.decode(testCase.expected.greedy_ids)).toBe(testCase.expected.greedy_text);
    });
  }

  it('puts BOS only when asked, and EOS when add_eos_token is set', () => {
    const body = tokenizer.encode('Hello world', { addSpecialTokens: false });
    expect(body).toEqual([15043, 3186]); // ▁Hello ▁world
    expect(tokenizer.encode('Hello world')).toEqual([1, 15043, 3186]);
    const withEos = Tokenizer.fromJSON(tokenizerJson, { ...tokenizerConfig, add_eos_token: true });
    expect(withEos.encode('Hello world')).toEqual([1, 15043, 3186, 2]);
    const noFlags = Tokenizer.fromJSON(tokenizerJson, {
      ...tokenizerConfig,
      add_bos_token: undefined,
      add_eos_token: undefined,
    });
    expect(noFlags.encode('Hello world')).toEqual([1, 15043, 3186]); // the tokenizer.json TemplateProcessing adds <s>
  });

  it('skips special tokens on request and decodes an empty list to ""', () => {
    expect(tokenizer.decode([1, 15043, 32000, 3186, 2])).toBe('<s> Hello<image> world</s>');
    expect(tokenizer.decode([1, 15043, 32000, 3186, 2], { skipSpecialTokens: true })).toBe('Hello world');
    expect(tokenizer.decode([])).toBe('');
  });
});

describe('Tokenizer.addTokens', () => {
  it('makes a new token a single id that round-trips through encode, decode and saveTo', async () => {
    const local = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
    // Before adding, "[SEG]" is split into pieces: ▁[ SE G ].
    expect(local.encode('[SEG]', { addSpecialTokens: false })).toEqual([518, 1660, 29954, 29962]);

    const [segId] = local.addTokens(['[SEG]']);
    expect(segId).toBe(32002);
    expect(local.vocabSize).toBe(32003);
    expect(local.tokenToId('[SEG]')).toBe(32002);
    // The legacy Prepend("▁") normalizer runs on each text segment between added tokens: "." becomes "▁." (869).
    const ids = local.encode('It is [SEG].');
    expect(ids).toEqual([1, 739, 338, 29871, 32002, 869]);
    expect(local.decode(ids)).toBe('<s> It is [SEG] .');
    // Matched verbatim (not normalized), so it is found without a space before it too.
    expect(local.encode('x[SEG]', { addSpecialTokens: false })).toContain(32002);
    // Adding again, or adding an existing token, returns the existing id.
    expect(local.addTokens(['[SEG]', '<image>'])).toEqual([32002, 32000]);
    expect(local.vocabSize).toBe(32003);

    const dir = join(scratchDir, 'with-seg');
    await local.saveTo(dir);
    const reloaded = await Tokenizer.fromDir(dir);
    expect(reloaded.encode('It is [SEG].')).toEqual(ids);
    const savedConfig = JSON.parse(
      await readFile(join(dir, 'tokenizer_config.json'), 'utf8'),
    ) as TokenizerConfigJSON;
    expect(savedConfig.added_tokens_decoder?.['32002']?.content).toBe('[SEG]');
  });

  it('skips tokens added as special when decoding with skipSpecialTokens', () => {
    const local = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
    const [regionId] = local.addTokens(['<region>'], { special: true });
    const ids = local.encode('a<region>b', { addSpecialTokens: false });
    expect(ids).toContain(regionId);
    expect(local.decode(ids, { skipSpecialTokens: true })).not.toContain('<region>');
    expect(local.decode(ids)).toContain('<region>');
  });
});

describe('Tokenizer.applyChatTemplate', () => {
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ];

  it('renders string content, special-token variables and extra variables', () => {
    const template =
      "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}" +
      '{% if add_generation_prompt %}[assistant]{% endif %}{{ suffix }}';
    const local = Tokenizer.fromJSON(tokenizerJson, { ...tokenizerConfig, chat_template: template });
    expect(local.applyChatTemplate(messages, { addGenerationPrompt: true, extra: { suffix: '!' } })).toBe(
      '<s>[system]Be brief.</s>[user]Hi</s>[assistant]!',
    );
    expect(local.applyChatTemplate(messages)).toBe('<s>[system]Be brief.</s>[user]Hi</s>');
  });

  it('picks named templates and reports raise_exception', () => {
    const local = Tokenizer.fromJSON(tokenizerJson, {
      ...tokenizerConfig,
      chat_template: [
        { name: 'default', template: "{{ messages[0]['content'] }}" },
        { name: 'tool_use', template: "{{ raise_exception('no tools here') }}" },
      ],
    });
    expect(local.applyChatTemplate(messages)).toBe('Be brief.');
    expect(() => local.applyChatTemplate(messages, { chatTemplate: 'tool_use' })).toThrow(/no tools here/);
    expect(local.applyChatTemplate(messages, { chatTemplate: '{{ messages | length }}' })).toBe('2');
  });

  it('prefers chat_template.jinja in the folder and says where it looked when there is none', async () => {
    const dir = join(scratchDir, 'jinja');
    const noTemplate = Tokenizer.fromJSON(tokenizerJson, { ...tokenizerConfig, chat_template: undefined });
    await noTemplate.saveTo(dir);
    const bare = await Tokenizer.fromDir(dir);
    expect(() => bare.applyChatTemplate(messages)).toThrow(
      /chat_template\.jinja.*chat_template\.json.*tokenizer_config\.json.*chatTemplate/,
    );

    await writeFile(join(dir, 'chat_template.jinja'), "{{ messages[1]['content'] }}!");
    const withFile = await Tokenizer.fromDir(dir);
    expect(withFile.applyChatTemplate(messages)).toBe('Hi!');
  });
});

describe('Tokenizer.fromDir errors', () => {
  it('names the folder and the missing tokenizer.json', async () => {
    const missing = join(scratchDir, 'no-such-folder');
    await expect(Tokenizer.fromDir(missing)).rejects.toThrow(new RegExp(`${missing}.*tokenizer\\.json`));
  });

  it('names the file holding invalid JSON', async () => {
    const dir = join(scratchDir, 'broken');
    await Tokenizer.fromJSON(tokenizerJson, tokenizerConfig).saveTo(dir);
    await writeFile(join(dir, 'tokenizer_config.json'), '{ "add_bos_token": tru');
    await expect(Tokenizer.fromDir(dir)).rejects.toThrow(/tokenizer_config\.json is not valid JSON/);
  });
});

describe('Tokenizer.applyChatTemplate with the LLaVA template', () => {
  it('explains that string content does not fit a template that iterates parts', () => {
    expect(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'hello' }])).toThrow(
      /failed to render.*selectattr.*pass content as \[\{ type: "text"/,
    );
  });
});
