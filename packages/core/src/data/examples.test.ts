import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { buildExample, type ExampleResult, IGNORE_INDEX, tokenizeSegments } from './examples.js';
import type { Sample, Turn } from './samples.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const IMAGE = 32000;

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(fixtureDir);
});

function sampleOf(turns: Turn[], images: string[]): Sample {
  return {
    id: 'x',
    images,
    turns,
    location: { file: 'd.json', index: 4 },
    markersPrepended: false,
    leadingAssistantDropped: false,
  };
}

const twoImages = sampleOf(
  [
    { role: 'user', text: 'Compare <image> and <image>.' },
    { role: 'assistant', text: 'The first is red.' },
    { role: 'user', text: 'And?' },
    { role: 'assistant', text: 'The second is blue.' },
  ],
  ['/a.png', '/b.png'],
);

function build(sample: Sample, maxLength: number, slots = 4): ExampleResult {
  return buildExample(sample, {
    tokenizer,
    template: 'vicuna_v1',
    imageToken: { id: IMAGE, slots },
    maxLength,
  });
}

function ok(result: ExampleResult) {
  if (!result.ok) throw new Error(result.message);
  return result.example;
}

describe('buildExample', () => {
  const full = () => ok(build(twoImages, 1024));

  it('expands each marker to `slots` placeholder ids in place; images keep marker order; placeholders never supervised', () => {
    const e = full();
    const ids = Array.from(e.inputIds);
    const runs = ids.flatMap((id, i) => (id === IMAGE && ids[i - 1] !== IMAGE ? [i] : []));
    expect(runs).toHaveLength(2);
    for (const start of runs) expect(ids.slice(start, start + 4)).toEqual([IMAGE, IMAGE, IMAGE, IMAGE]);
    expect(ids.filter((id) => id === IMAGE)).toHaveLength(8);
    expect(e.images).toEqual(['/a.png', '/b.png']);
    // Same ids as the unexpanded tokenization, with the runs collapsed.
    const collapsed = ids.filter((id, i) => id !== IMAGE || ids[i - 1] !== IMAGE);
    const text = `${'A chat between a curious user and an artificial intelligence assistant. '}The assistant gives helpful, detailed, and polite answers to the user's questions. USER: Compare <image> and <image>. ASSISTANT: The first is red.</s>USER: And? ASSISTANT: The second is blue.</s>`;
    expect(collapsed).toEqual(tokenizer.encode(text));
    e.labels.forEach((label, i) => {
      if (ids[i] === IMAGE) expect(label).toBe(IGNORE_INDEX);
    });
    expect(e.truncated).toBe(false);
  });

  it('truncation: cutting through or dropping an image skips the sample; cutting an answer keeps the rest', () => {
    const e = full();
    const firstImage = e.inputIds.indexOf(IMAGE);
    for (const maxLength of [firstImage, firstImage + 1, firstImage + 3]) {
      const r = build(twoImages, maxLength);
      expect(r.ok ? 'ok' : r.reason).toBe('image_truncated');
    }
    const firstSupervised = e.labels.findIndex((l) => l !== IGNORE_INDEX);
    const none = build(twoImages, firstSupervised);
    expect(none.ok).toBe(false);
    if (!none.ok) {
      expect(none.reason).toBe('no_supervised_tokens');
      expect(none.message).toBe(
        `d.json[4]: sample x: truncation to maxLength ${firstSupervised} (of ${e.inputIds.length} tokens) leaves no assistant token to train on`,
      );
    }
    const cut = ok(build(twoImages, firstSupervised + 2));
    expect(cut.truncated).toBe(true);
    expect(cut.supervisedTokens).toBe(2);
    expect(Array.from(cut.inputIds)).toEqual(Array.from(e.inputIds.slice(0, firstSupervised + 2)));
    expect(Array.from(cut.labels)).toEqual(Array.from(e.labels.slice(0, firstSupervised + 2)));
    expect(tokenizer.decode(Array.from(cut.labels.slice(firstSupervised)))).toBe('The first');
  });

  it('counts image/marker mismatches and conversations without an answer', () => {
    const mismatch = build(sampleOf(twoImages.turns, ['/a.png']), 1024);
    expect(mismatch.ok ? 'ok' : mismatch.reason).toBe('image_count_mismatch');
    const noAnswer = build(sampleOf([{ role: 'user', text: 'Hello?' }], []), 1024);
    expect(noAnswer.ok ? 'ok' : noAnswer.reason).toBe('no_supervised_tokens');
  });

  it('refuses an image token id the tokenizer does not hold as one token', () => {
    expect(() =>
      buildExample(twoImages, {
        tokenizer,
        template: 'vicuna_v1',
        imageToken: { id: 3148, slots: 1 },
        maxLength: 64,
      }),
    ).toThrow(/The image token \(id 3148\): "▁US" encodes as \d+ tokens/);
    expect(() =>
      buildExample(twoImages, {
        tokenizer,
        template: 'vicuna_v1',
        imageToken: { id: 99999, slots: 1 },
        maxLength: 64,
      }),
    ).toThrow(/imageToken.id 99999 is not in the tokenizer's vocabulary/);
  });
});

describe('tokenizeSegments', () => {
  it('assigns each prefix extension to its segment; a merge across a boundary moves to the later segment', () => {
    // "▁hel" + "lo": the whole text tokenizes as one "▁hello", which the second segment takes.
    const merged = tokenizeSegments(tokenizer, [
      { text: 'Say hel', supervised: false },
      { text: 'lo', supervised: true },
    ]);
    expect(merged.ids).toEqual(tokenizer.encode('Say hello', { addSpecialTokens: false }));
    expect(merged.retokenizedBoundaries).toBe(1);
    expect(merged.supervised).toEqual(merged.ids.map((_, i) => i === merged.ids.length - 1));
    expect(tokenizer.decode(merged.ids.slice(-1))).toBe('hello');

    const clean = tokenizeSegments(
      tokenizer,
      [
        { text: 'Q: hi A:', supervised: false },
        { text: ' fine</s>', supervised: true },
      ],
      [1],
    );
    expect(clean.retokenizedBoundaries).toBe(0);
    expect(clean.ids).toEqual(tokenizer.encode('Q: hi A: fine</s>'));
    expect(tokenizer.decode(clean.ids.filter((_, i) => clean.supervised[i]))).toBe('fine</s>');
  });
});
