// Parity with the PyTorch/transformers reference outputs of fixtures/tiny-llava-hf (text-only cases): the
// language model alone, loaded from the LLaVA checkpoint's language_model.* tensors (F16).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { loadSafetensors } from '../io/safetensors-read.js';
import type { LlamaForCausalLM } from './llama.js';
import { loadCausalLM } from './weights.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

interface FixtureCase {
  name: string;
  image: string | null;
  input_ids: number[];
  expected: {
    logits_last_top5: { ids: number[]; values: number[] };
    greedy_ids: number[];
    greedy_top1_logits: number[];
  };
}
const cases = (JSON.parse(readFileSync(`${FIXTURE}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;
const textCases = cases.filter((c) => c.image === null);

let model: LlamaForCausalLM;
let expectedLogits: Map<string, tf.Tensor>;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadCausalLM(FIXTURE);
  expectedLogits = await loadSafetensors(`${FIXTURE}expected.safetensors`, {
    names: (n) => n.endsWith('.logits_last'),
  });
});

/** Last-position logits of ids [1, T] with a full (cache-free) forward. */
function lastLogits(ids: number[]): Float32Array {
  return tf.tidy(() => {
    const { hidden } = model.forward({
      inputsEmbeds: model.embed(tf.tensor2d([ids], [1, ids.length], 'int32')),
    });
    return model.lmHead(tf.slice(hidden, [0, ids.length - 1, 0], [1, 1, -1])).dataSync() as Float32Array;
  });
}

/** Greedy decoding through the KV cache: prefill once, then one token per step; the logits of every step. */
function greedyWithCache(prompt: number[], steps: number): { ids: number[]; logits: Float32Array[] } {
  const cache = model.createCache(1);
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  let input = prompt;
  for (let s = 0; s < steps; s++) {
    const row = tf.tidy(() => {
      const { hidden } = model.forward({
        inputsEmbeds: model.embed(tf.tensor2d([input], undefined, 'int32')),
        cache,
      });
      return model.lmHead(tf.slice(hidden, [0, input.length - 1, 0], [1, 1, -1])).dataSync() as Float32Array;
    });
    logits.push(row);
    ids.push(argmax(row));
    input = [ids[ids.length - 1]];
  }
  cache.dispose();
  return { ids, logits };
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
}

describe('tiny-llava-hf language model parity', () => {
  it('has text-only cases', () => expect(textCases.length).toBeGreaterThan(0));

  for (const c of textCases) {
    it(`${c.name}: last-position logits and top-5`, () => {
      const got = lastLogits(c.input_ids);
      const want = expectedLogits.get(`${c.name}.logits_last`)!.dataSync() as Float32Array;
      expect(got.length).toBe(want.length);
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
      console.log(
        `${c.name}: max |logits - expected| = ${diff.toExponential(3)} (max |expected| ${maxAbs(want).toFixed(3)})`,
      );
      expect(diff).toBeLessThanOrEqual(1e-4 * maxAbs(want));
      const top5 = [...got.keys()].sort((a, b) => got[b] - got[a]).slice(0, 5);
      expect(new Set(top5)).toEqual(new Set(c.expected.logits_last_top5.ids));
    });

    it(`${c.name}: greedy 12 tokens without cache (full recompute)`, () => {
      const ids = [...c.input_ids];
      for (let step = 0; step < c.expected.greedy_ids.length; step++) {
        const logits = lastLogits(ids);
        const next = argmax(logits);
        expect(Math.abs(logits[next] - c.expected.greedy_top1_logits[step])).toBeLessThanOrEqual(
          1e-4 * Math.abs(c.expected.greedy_top1_logits[step]) + 1e-5,
        );
        ids.push(next);
      }
      expect(ids.slice(c.input_ids.length)).toEqual(c.expected.greedy_ids);
    });

    it(`${c.name}: greedy 12 tokens with the KV cache; every step's logits equal full recompute`, () => {
      const { ids, logits } = greedyWithCache(c.input_ids, c.expected.greedy_ids.length);
      expect(ids).toEqual(c.expected.greedy_ids);
      let diff = 0;
      let scale = 0;
      logits.forEach((row, step) => {
        const full = lastLogits([...c.input_ids, ...ids.slice(0, step)]);
        for (let i = 0; i < row.length; i++) {
          diff = Math.max(diff, Math.abs(row[i] - full[i]));
          scale = Math.max(scale, Math.abs(full[i]));
        }
      });
      console.log(
        `${c.name}: max |cached - recomputed| over ${logits.length} steps = ${diff.toExponential(3)}`,
      );
      expect(diff).toBeLessThanOrEqual(1e-4 * scale);
    });
  }
});
