import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { expandPlaceholders } from '../multimodal/splice.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { buildExample, type Example, IGNORE_INDEX } from './examples.js';
import type { Sample, Turn } from './samples.js';
import {
  CHATML_SYSTEM,
  getTemplate,
  LLAVA_LLAMA_SYSTEM,
  LLAVA_V1_SYSTEM,
  type TemplateName,
  VICUNA_V1_SYSTEM,
} from './templates.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const IMAGE = 32000;
const SLOTS = 3;

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(fixtureDir);
  tokenizer.addTokens(
    ['<|im_start|>', '<|im_end|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
    {
      special: true,
    },
  );
});

function sampleOf(turns: Turn[], images = ['/data/a.png']): Sample {
  return {
    id: 's1',
    images,
    turns,
    location: { file: 'mem.jsonl', line: 1 },
    markersPrepended: false,
    leadingAssistantDropped: false,
  };
}

const twoRounds = sampleOf([
  { role: 'user', text: '<image>\nWhat is shown?' },
  { role: 'assistant', text: 'A cat.' },
  { role: 'user', text: 'Color?' },
  { role: 'assistant', text: 'Black.' },
]);

function build(sample: Sample, template: TemplateName, maxLength = 1024): Example {
  const result = buildExample(sample, {
    tokenizer,
    template: getTemplate(template),
    imageToken: { id: IMAGE, slots: SLOTS },
    maxLength,
  });
  if (!result.ok) throw new Error(result.message);
  return result.example;
}

/** Contiguous runs of supervised positions, each decoded. */
function supervisedRuns(example: Example): string[] {
  const runs: number[][] = [];
  example.labels.forEach((label, i) => {
    if (label === IGNORE_INDEX) return;
    if (i > 0 && example.labels[i - 1] !== IGNORE_INDEX) runs[runs.length - 1].push(label);
    else runs.push([label]);
  });
  return runs.map((ids) => tokenizer.decode(ids));
}

/** The independent reference: tokenize the whole hand-written text (BOS added), expand images like the processor. */
function referenceIds(text: string): number[] {
  return expandPlaceholders(tokenizer.encode(text), IMAGE, SLOTS);
}

function expectMaskInvariants(example: Example): void {
  example.labels.forEach((label, i) => {
    if (label !== IGNORE_INDEX) expect(label).toBe(example.inputIds[i]);
    if (example.inputIds[i] === IMAGE) expect(label).toBe(IGNORE_INDEX);
  });
  expect(example.labels[0]).toBe(IGNORE_INDEX);
}

describe('conversation templates: ids = tokenization of the rendered text, labels = answers + terminator', () => {
  const cases: { template: TemplateName; text: string; runs: string[]; sample?: Sample }[] = [
    {
      template: 'plain',
      sample: sampleOf(twoRounds.turns.slice(0, 2)),
      text: '<image>A cat.\n',
      runs: ['A cat.\n'],
    },
    {
      template: 'vicuna_v1',
      text: `${VICUNA_V1_SYSTEM} USER: <image>\nWhat is shown? ASSISTANT: A cat.</s>USER: Color? ASSISTANT: Black.</s>`,
      runs: ['A cat.</s>', 'Black.</s>'],
    },
    {
      template: 'llava_v1',
      text: `${LLAVA_V1_SYSTEM} USER: <image>\nWhat is shown? ASSISTANT: A cat.</s>USER: Color? ASSISTANT: Black.</s>`,
      runs: ['A cat.</s>', 'Black.</s>'],
    },
    {
      template: 'chatml',
      text:
        `<|im_start|>system\n${CHATML_SYSTEM}<|im_end|>\n<|im_start|>user\n<image>\nWhat is shown?<|im_end|>\n` +
        '<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\nColor?<|im_end|>\n<|im_start|>assistant\nBlack.<|im_end|>',
      runs: ['A cat.<|im_end|>', 'Black.<|im_end|>'],
    },
    {
      template: 'llama_2',
      text: `[INST] <<SYS>>\n${LLAVA_LLAMA_SYSTEM}\n<</SYS>>\n\n<image>\nWhat is shown? [/INST] A cat. </s><s>[INST] Color? [/INST] Black. </s>`,
      runs: ['A cat. </s>', 'Black. </s>'],
    },
    {
      template: 'llama_3',
      text:
        `<|start_header_id|>system<|end_header_id|>\n\n${LLAVA_LLAMA_SYSTEM}<|eot_id|>` +
        '<|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is shown?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nA cat.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nColor?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nBlack.<|eot_id|>',
      runs: ['A cat.<|eot_id|>', 'Black.<|eot_id|>'],
    },
    {
      // The llava-hf template: no terminator, a trailing space after each answer.
      template: 'hf',
      text: 'USER: <image>\nWhat is shown? ASSISTANT: A cat. USER: Color? ASSISTANT: Black. ',
      runs: ['A cat.', 'Black. '],
    },
  ];

  for (const { template, text, runs, sample } of cases) {
    it(template, () => {
      const input = sample ?? twoRounds;
      const rendered = getTemplate(template)
        .render(input.turns, { tokenizer, imageTokenText: '<image>' })
        .map((s) => s.text)
        .join('');
      expect(rendered).toBe(text);
      const example = build(input, template);
      expect(Array.from(example.inputIds)).toEqual(referenceIds(text));
      expect(supervisedRuns(example)).toEqual(runs);
      expect(example.supervisedTokens).toBe(example.labels.filter((l) => l !== IGNORE_INDEX).length);
      expect(example.inputIds.filter((id) => id === IMAGE).length).toBe(SLOTS);
      expectMaskInvariants(example);
    });
  }

  it('hf: the trailing space of an answer merges into the next "USER" token, counted as a retokenized boundary', () => {
    const example = build(twoRounds, 'hf');
    expect(example.retokenizedBoundaries).toBe(1);
    expect(example.endsWithSpecialToken).toBe(false);
    expect(build(twoRounds, 'vicuna_v1').retokenizedBoundaries).toBe(0);
    expect(build(twoRounds, 'vicuna_v1').endsWithSpecialToken).toBe(true);
  });

  it('hf: the prompt ids match the llava-hf fixture input_ids of every case (LlavaProcessor output)', async () => {
    const cases = JSON.parse(await readFile(join(fixtureDir, 'cases.json'), 'utf8')) as {
      image_seq_length: number;
      cases: { question: string; images: string[]; input_ids: number[] }[];
    };
    for (const c of cases.cases) {
      const sample = sampleOf(
        [
          { role: 'user', text: `${'<image>\n'.repeat(c.images.length)}${c.question}` },
          { role: 'assistant', text: 'Fine.' },
        ],
        c.images,
      );
      const result = buildExample(sample, {
        tokenizer,
        template: 'hf',
        imageToken: { id: IMAGE, slots: cases.image_seq_length },
        maxLength: 4096,
      });
      if (!result.ok) throw new Error(result.message);
      const firstSupervised = result.example.labels.findIndex((l) => l !== IGNORE_INDEX);
      expect(Array.from(result.example.inputIds.slice(0, firstSupervised))).toEqual(c.input_ids);
    }
  });

  it('a system turn in the data replaces the default system prompt; systemPrompt "" removes it', () => {
    const withSystem = sampleOf([{ role: 'system', text: 'Be brief.' }, ...twoRounds.turns]);
    const ctx = { tokenizer, imageTokenText: '<image>' };
    expect(getTemplate('vicuna_v1').render(withSystem.turns, ctx)[0].text).toBe(
      'Be brief. USER: <image>\nWhat is shown? ASSISTANT:',
    );
    expect(getTemplate('llama_2', { systemPrompt: '' }).render(twoRounds.turns, ctx)[0].text).toBe(
      '[INST] <image>\nWhat is shown? [/INST]',
    );
    expect(getTemplate('chatml', { systemPrompt: 'S' }).render(twoRounds.turns, ctx)[0].text).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<image>\nWhat is shown?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('plain takes one exchange; other shapes are template_mismatch', () => {
    const result = buildExample(twoRounds, {
      tokenizer,
      template: 'plain',
      imageToken: { id: IMAGE, slots: 1 },
      maxLength: 64,
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe('template_mismatch');
      expect(result.message).toMatch(/mem\.jsonl:1: sample s1: .*exactly one user turn/);
    }
  });

  it('hf: a template that rewrites earlier turns cannot be split by prefix → template_mismatch', () => {
    // Renders only the last message: each rendering does not extend the previous one.
    const lastOnly =
      '{{ messages[-1].role }}: {{ messages[-1].content }}{% if add_generation_prompt %} ASSISTANT:{% endif %}';
    const result = buildExample(
      sampleOf(
        twoRounds.turns.map((t) => ({ ...t, text: t.text.replace('<image>\n', '') })),
        [],
      ),
      {
        tokenizer,
        template: getTemplate('hf', { chatTemplate: lastOnly, contentFormat: 'string' }),
        imageToken: { id: IMAGE, slots: 1 },
        maxLength: 256,
      },
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toBe('template_mismatch');
  });

  it('hf with string content keeps markers inline as the image token text', () => {
    const template = getTemplate('hf', {
      chatTemplate:
        '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
      contentFormat: 'string',
    });
    const segments = template.render(twoRounds.turns.slice(0, 2), { tokenizer, imageTokenText: '<image>' });
    expect(segments).toEqual([
      { text: 'user: <image>\nWhat is shown?\nassistant:', supervised: false },
      // The rendering with the answer is "assistant: A cat.\n", which extends the generation prompt.
      { text: ' A cat.\n', supervised: true },
    ]);
  });

  it('templates needing tokens the tokenizer lacks fail before any sample, naming the fix', async () => {
    const bare = await Tokenizer.fromDir(fixtureDir);
    expect(() =>
      buildExample(twoRounds, {
        tokenizer: bare,
        template: 'chatml',
        imageToken: { id: IMAGE, slots: 1 },
        maxLength: 64,
      }),
    ).toThrow(/Template chatml needs "<\|im_start\|>" as one token.*addTokens/);
    expect(() => getTemplate('alpaca')).toThrow(
      /Unknown conversation template "alpaca": use one of plain, vicuna_v1/,
    );
  });
});
