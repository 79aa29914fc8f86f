// Weight-only int8 rows: the rounding bound, the product against float32 on the dequantized weight (JS loop and
// native twin), and what an int8 LM head changes on the parity fixture (tiny-llava-hf's greedy ids and logits).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { enableNativeMatmul } from '../backend/native.js';
import { generate } from '../generation/generate.js';
import type { LlamaForCausalLM } from '../llm/llama.js';
import { loadCausalLM } from '../llm/weights.js';
import { nativeInt8ProductActive, setNativeInt8Product } from './kernels/int8-product.js';
import { linear } from './matmul.js';
import { dequantizeRowsInt8, int8Linear, quantizeRowsInt8 } from './quantize.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

interface FixtureCase {
  name: string;
  image: string | null;
  input_ids: number[];
  expected: { greedy_ids: number[] };
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('int8 weight rows', () => {
  it('round to within half a step of each row’s scale, zero rows stay zero, the depth must pack by 4', () => {
    const w = tf.tensor2d([
      [0.5, -1, 0.25, 0.125],
      [0, 0, 0, 0],
      [3, -2, 1, -0.001],
    ]);
    const rows = quantizeRowsInt8(w);
    expect(Array.from(rows.scales.dataSync())).toEqual([1 / 127, 0, 3 / 127].map(Math.fround));
    const back = dequantizeRowsInt8(rows).arraySync();
    const original = w.arraySync();
    const scales = rows.scales.arraySync();
    back.forEach((row, j) => {
      row.forEach((v, i) => {
        expect(Math.abs(v - (original[j]?.[i] as number))).toBeLessThanOrEqual(
          (scales[j] as number) / 2 + 1e-7,
        );
      });
    });
    expect(back[0]?.[1]).toBeCloseTo(-1, 6); // the row's largest magnitude is exact (±127)
    expect(back[1]).toEqual([0, 0, 0, 0]);
    expect(() => quantizeRowsInt8(tf.zeros([2, 6]) as tf.Tensor2D, 'lm_head.weight')).toThrow(
      /lm_head\.weight has 6 input features.*multiple of 4/,
    );
    tf.dispose([w, rows.q, rows.scales]);
  });

  it('int8Linear equals linear on the dequantized weight, natively and in the JS loop', async () => {
    const w = tf.randomNormal([300, 64], 0, 0.05, 'float32', 3) as tf.Tensor2D;
    const x = tf.randomNormal([2, 3, 64], 0, 1, 'float32', 4);
    const rows = quantizeRowsInt8(w);
    const dequantized = dequantizeRowsInt8(rows);
    const want = linear(x, dequantized).dataSync();
    const run = () => {
      const y = int8Linear(x, rows);
      expect(y.shape).toEqual([2, 3, 300]);
      const got = y.dataSync();
      y.dispose();
      return got;
    };
    const check = (got: tf.TypedArray) => {
      got.forEach((v, i) => {
        expect(Math.abs(v - (want[i] as number))).toBeLessThanOrEqual(2e-5);
      });
    };
    expect(nativeInt8ProductActive()).toBe(true); // the wasm backend with @vistune/native (CI builds it)
    check(run());
    setNativeInt8Product(null);
    try {
      check(run());
    } finally {
      await enableNativeMatmul();
    }
    expect(nativeInt8ProductActive()).toBe(true);
    tf.dispose([w, x, rows.q, rows.scales, dequantized]);
  });
});

describe('an int8 LM head on tiny-llava-hf', () => {
  let model: LlamaForCausalLM;
  const cases = (
    JSON.parse(readFileSync(`${FIXTURE}cases.json`, 'utf8')) as { cases: FixtureCase[] }
  ).cases.filter((c) => c.image === null);
  beforeAll(async () => {
    model = await loadCausalLM(FIXTURE);
  });
  afterAll(() => model.dispose());

  it('keeps the fixture’s greedy ids; each logit moves by at most its rounding bound', () => {
    expect(cases.length).toBeGreaterThan(0);
    let largest = 0;
    for (const c of cases) {
      const ids = tf.tensor2d([c.input_ids], [1, c.input_ids.length], 'int32');
      const hidden = model.forward({ inputsEmbeds: model.embed(ids) }).hidden;
      const float32 = model.lmHead(hidden);
      model.quantizeLmHead('int8');
      try {
        const int8 = model.lmHead(hidden);
        // |Δlogit[t, j]| ≤ scale[j] / 2 · Σ_i |hidden[t, i]|: every weight moved by at most half its row's step.
        const reference = quantizeRowsInt8(model.head?.weight ?? model.model.embedTokens.weight);
        const scales = reference.scales;
        const [drift, excess] = tf.tidy(() => {
          const delta = tf.abs(tf.sub(int8, float32));
          const bound = tf.mul(tf.sum(tf.abs(hidden), -1, true), tf.div(scales, 2));
          return [
            tf.max(delta).dataSync()[0] as number,
            tf.max(tf.sub(delta, bound)).dataSync()[0] as number,
          ];
        });
        expect(excess, c.name).toBeLessThanOrEqual(1e-4);
        largest = Math.max(largest, drift);
        const out = generate(
          model,
          { inputIds: [c.input_ids] },
          { maxNewTokens: c.expected.greedy_ids.length },
        );
        expect(out.ids, c.name).toEqual([c.expected.greedy_ids]);
        tf.dispose([int8, reference.q, scales]);
      } finally {
        model.quantizeLmHead(null);
        tf.dispose([ids, hidden, float32]);
      }
    }
    // The largest logit change over the cases (0.061 when written, logits of magnitude ~1–10).
    expect(largest).toBeGreaterThan(0);
  });
});
