// generate / generateStream on the tiny-llava-hf language model: the fixture's greedy ids with the KV cache,
// batched left-padded = unbatched, inputsEmbeds = inputIds, stopping, sampling wiring, streaming, no leaks.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import type { LlamaForCausalLM } from '../llm/llama.js';
import { loadCausalLM } from '../llm/weights.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import {
  type GeneratedToken,
  type GenerateOptions,
  generate,
  generateAsync,
  generateStream,
} from './generate.js';
import { applyRepetitionPenalty } from './logits.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

interface FixtureCase {
  name: string;
  image: string | null;
  input_ids: number[];
  expected: { greedy_ids: number[]; greedy_text: string };
}
const cases = (JSON.parse(readFileSync(`${FIXTURE}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;
const [caseA, caseB] = cases.filter((c) => c.image === null);

let model: LlamaForCausalLM;
let tokenizer: Tokenizer;
const decode = (ids: readonly number[]) => tokenizer.decode(ids);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadCausalLM(FIXTURE);
  tokenizer = await Tokenizer.fromDir(FIXTURE);
});

/** Greedy decoding by full recompute, independent of generate and the cache; `penalty` as HF's processor. */
function referenceGreedy(prompt: number[], steps: number, penalty = 1): number[] {
  const ids = [...prompt];
  for (let s = 0; s < steps; s++) {
    const row = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d([ids], [1, ids.length], 'int32'));
      return tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array;
    });
    const scores = penalty === 1 ? row : applyRepetitionPenalty(row, ids, penalty);
    ids.push(scores.indexOf(Math.max(...scores)));
  }
  return ids.slice(prompt.length);
}

describe('generate on tiny-llava-hf', () => {
  it('reproduces the fixture greedy ids with the KV cache, for both text-only cases', () => {
    for (const c of [caseA, caseB]) {
      const out = generate(model, { inputIds: [c.input_ids] }, { maxNewTokens: 12 });
      expect(out.ids).toEqual([c.expected.greedy_ids]);
      expect(out.finishReason).toEqual([{ type: 'max_new_tokens', maxNewTokens: 12 }]);
    }
  });

  it('batched with left padding equals unbatched, for prompts of different lengths', () => {
    expect(caseA.input_ids.length).not.toBe(caseB.input_ids.length);
    const out = generate(model, { inputIds: [caseA.input_ids, caseB.input_ids] }, { maxNewTokens: 12 });
    expect(out.ids).toEqual([caseA.expected.greedy_ids, caseB.expected.greedy_ids]);
  });

  it('takes inputsEmbeds (+ a left-padded attention mask) like inputIds', () => {
    const single = tf.tidy(() => model.embed(tf.tensor2d([caseB.input_ids], undefined, 'int32')));
    expect(generate(model, { inputsEmbeds: single }, { maxNewTokens: 12 }).ids).toEqual([
      caseB.expected.greedy_ids,
    ]);
    single.dispose();

    const T = caseA.input_ids.length;
    const pad = T - caseB.input_ids.length;
    const padded = [caseA.input_ids, [...new Array<number>(pad).fill(0), ...caseB.input_ids]];
    const mask = tf.tensor2d(
      [
        new Array<number>(T).fill(1),
        [...new Array<number>(pad).fill(0), ...new Array<number>(T - pad).fill(1)],
      ],
      undefined,
      'int32',
    );
    const embeds = tf.tidy(() => model.embed(tf.tensor2d(padded, undefined, 'int32')));
    const out = generate(model, { inputsEmbeds: embeds, attentionMask: mask }, { maxNewTokens: 12 });
    expect(out.ids).toEqual([caseA.expected.greedy_ids, caseB.expected.greedy_ids]);
    tf.dispose([embeds, mask]);
  });

  it('stops a row at EOS (kept in its output) while the other row continues', () => {
    const eos = caseA.expected.greedy_ids[3];
    expect(caseB.expected.greedy_ids).not.toContain(eos);
    const out = generate(
      model,
      { inputIds: [caseA.input_ids, caseB.input_ids] },
      { maxNewTokens: 12, eosTokenIds: [eos] },
    );
    expect(out.ids[0]).toEqual(caseA.expected.greedy_ids.slice(0, 4));
    expect(out.finishReason[0]).toEqual({ type: 'eos', tokenId: eos });
    expect(out.ids[1]).toEqual(caseB.expected.greedy_ids);
  });

  it('stops at a stop string and returns decoded text', () => {
    const full = decode(caseA.expected.greedy_ids);
    expect(full).toBe(caseA.expected.greedy_text);
    const stop = caseA.expected.greedy_text.slice(12, 16);
    const out = generate(
      model,
      { inputIds: [caseA.input_ids] },
      { maxNewTokens: 12, stopStrings: [stop], decode },
    );
    const reason = out.finishReason[0];
    expect(reason.type).toBe('stop_string');
    const n = out.ids[0].length;
    expect(out.ids[0]).toEqual(caseA.expected.greedy_ids.slice(0, n));
    expect(decode(out.ids[0])).toContain(stop);
    expect(decode(out.ids[0].slice(0, -1))).not.toContain(stop);
    expect(out.text).toEqual([decode(out.ids[0])]);
  });

  it('applies the repetition penalty like HF (checked against a full-recompute loop)', () => {
    const out = generate(model, { inputIds: [caseB.input_ids] }, { maxNewTokens: 6, repetitionPenalty: 0.3 });
    const want = referenceGreedy(caseB.input_ids, 6, 0.3);
    expect(out.ids[0]).toEqual(want);
    expect(want).not.toEqual(caseB.expected.greedy_ids.slice(0, 6));
  });

  it('samples reproducibly by seed; top-k 1 sampling is greedy', () => {
    const opts = { maxNewTokens: 8, doSample: true, temperature: 1.5 };
    const a = generate(model, { inputIds: [caseA.input_ids] }, { ...opts, seed: 1 });
    const b = generate(model, { inputIds: [caseA.input_ids] }, { ...opts, seed: 1 });
    const c = generate(model, { inputIds: [caseA.input_ids] }, { ...opts, seed: 2 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    const topK1 = generate(
      model,
      { inputIds: [caseA.input_ids] },
      { maxNewTokens: 12, doSample: true, topK: 1, seed: 3 },
    );
    expect(topK1.ids).toEqual([caseA.expected.greedy_ids]);
  });

  it('streams each token with its text, then returns the result', async () => {
    const events: GeneratedToken[] = [];
    const stream = generateStream(model, { inputIds: [caseA.input_ids] }, { maxNewTokens: 12, decode });
    let step = await stream.next();
    while (!step.done) {
      events.push(step.value);
      step = await stream.next();
    }
    expect(events.map((e) => e.tokenId)).toEqual(caseA.expected.greedy_ids);
    expect(events.map((e) => e.text).join('')).toBe(caseA.expected.greedy_text);
    expect(events.at(-1)?.finishReason).toEqual({ type: 'max_new_tokens', maxNewTokens: 12 });
    expect(step.value.ids).toEqual([caseA.expected.greedy_ids]);
  });

  it('leaves no tensors behind (also when a stream is abandoned)', async () => {
    generate(model, { inputIds: [caseA.input_ids] }, { maxNewTokens: 2 }); // warm the RoPE tables
    const before = tf.memory().numTensors;
    generate(model, { inputIds: [caseA.input_ids, caseB.input_ids] }, { maxNewTokens: 5 });
    generate(model, { inputIds: [caseA.input_ids] }, { maxNewTokens: 5, doSample: true, topP: 0.9, seed: 0 });
    for await (const token of generateStream(model, { inputIds: [caseB.input_ids] }, { maxNewTokens: 12 })) {
      if (token.tokenId >= 0) break;
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => generate(model, { inputIds: [[1, 32064]] })).toThrow(
      'generate: inputIds[0] holds 32064, outside the vocabulary [0, 32064)',
    );
  });

  it('rejects requests past the model positions', () => {
    expect(() =>
      generate(model, { inputIds: [caseA.input_ids] }, { maxNewTokens: model.maxPositions }),
    ).toThrow(/exceeds the model's 512 positions/);
  });

  it('generateAsync (awaited reads, as on webgpu) gives the same ids as generate: fixture, padded batch, penalty, sampling', async () => {
    const T = caseA.input_ids.length;
    const pad = T - caseB.input_ids.length;
    const mask = tf.tensor2d(
      [
        new Array<number>(T).fill(1),
        [...new Array<number>(pad).fill(0), ...new Array<number>(T - pad).fill(1)],
      ],
      undefined,
      'int32',
    );
    const embeds = tf.tidy(() =>
      model.embed(
        tf.tensor2d(
          [caseA.input_ids, [...new Array<number>(pad).fill(0), ...caseB.input_ids]],
          undefined,
          'int32',
        ),
      ),
    );
    const requests: [Parameters<typeof generate>[1], GenerateOptions][] = [
      [{ inputIds: [caseA.input_ids, caseB.input_ids] }, { maxNewTokens: 12 }],
      [{ inputsEmbeds: embeds, attentionMask: mask }, { maxNewTokens: 12 }],
      [{ inputIds: [caseB.input_ids] }, { maxNewTokens: 6, repetitionPenalty: 0.3 }],
      [{ inputIds: [caseA.input_ids] }, { maxNewTokens: 8, doSample: true, temperature: 1.5, seed: 1 }],
    ];
    const before = tf.memory().numTensors;
    for (const [input, opts] of requests) {
      const awaited = await generateAsync(model, input, { ...opts, decode });
      expect(awaited).toEqual(generate(model, input, { ...opts, decode }));
    }
    expect(tf.memory().numTensors).toBe(before);
    const fixture = await generateAsync(
      model,
      { inputIds: [caseA.input_ids, caseB.input_ids] },
      { maxNewTokens: 12 },
    );
    expect(fixture.ids).toEqual([caseA.expected.greedy_ids, caseB.expected.greedy_ids]);
    tf.dispose([embeds, mask]);
  });
});
