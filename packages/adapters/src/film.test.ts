import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FilmProjectorConfigSchema } from './config.js';
import { FilmProjector } from './film.js';
import { register } from './register.js';

/** Deterministic values in [-1, 1]. */
const values = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => Math.sin(seed * 7919 + i * 1.618));
const relu = (x: number) => Math.max(0, x);
/** y = x Wᵀ + b on plain arrays; W [out][in] flattened row-major. */
const dense = (x: number[], W: number[], b: number[], out: number) =>
  Array.from({ length: out }, (_, o) =>
    x.reduce((s, v, i) => s + v * (W[o * x.length + i] as number), b[o] as number),
  );

describe('FilmProjector (film_mlp)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('scales and shifts the hidden features by the masked mean of the text, as a plain-JS FiLM computes', () => {
    const [inDim, outDim, tokens, T] = [3, 4, 2, 5];
    const p = new FilmProjector(FilmProjectorConfigSchema.parse({ inDim, outDim, act: 'relu', seed: 3 }));
    const w = (name: string) =>
      Array.from(
        p
          .namedParameters()
          .find(([n]) => n === name)?.[1]
          .dataSync() ?? [],
      );
    // Non-zero biases everywhere, so a missing term shows.
    for (const [name, v] of p.namedParameters()) v.assign(tf.tensor(values(v.size, name.length), v.shape));
    const feats = values(tokens * inDim, 11);
    const embeds = values(T * outDim, 12);
    const mask = [1, 0, 1, 1, 0];
    const out = p.forward(tf.tensor3d(feats, [1, tokens, inDim]), {
      layout: { tokens, prefixTokens: 0, grid: null } as never,
      text: { embeds: tf.tensor3d(embeds, [1, T, outDim]), mask: tf.tensor2d(mask, [1, T]) },
    });
    const prompt = Array.from({ length: outDim }, (_, d) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += (mask[t] as number) * (embeds[t * outDim + d] as number);
      return s / 3;
    });
    const gb = dense(prompt, w('film.weight'), w('film.bias'), 2 * outDim);
    const expected = Array.from({ length: tokens }, (_, k) => {
      const h = dense(
        feats.slice(k * inDim, (k + 1) * inDim),
        w('linear_1.weight'),
        w('linear_1.bias'),
        outDim,
      );
      const m = h.map((v, d) => relu(v * (1 + (gb[d] as number)) + (gb[outDim + d] as number)));
      return dense(m, w('linear_2.weight'), w('linear_2.bias'), outDim);
    }).flat();
    const got = Array.from(out.dataSync());
    expect(got.length).toBe(expected.length);
    got.forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i] as number, 5);
    });
  });

  it('ignores masked text and refuses to run without text', () => {
    const p = new FilmProjector(FilmProjectorConfigSchema.parse({ inDim: 2, outDim: 3, seed: 1 }));
    const feats = tf.tensor3d(values(4, 1), [1, 2, 2]);
    const mask = tf.tensor2d([1, 1, 0], [1, 3]);
    const a = values(9, 2);
    const b = [...a.slice(0, 6), 5, -5, 5]; // differs only at the masked position
    const run = (e: number[]) =>
      p
        .forward(feats, { layout: {} as never, text: { embeds: tf.tensor3d(e, [1, 3, 3]), mask } })
        .arraySync();
    expect(run(b)).toEqual(run(a));
    expect(run(a.map((v) => v + 1))).not.toEqual(run(a));
    expect(() => p.forward(feats, { layout: {} as never })).toThrow(/film_mlp projector: no prompt text/);
  });

  it('is registered as film_mlp and says it reads text', async () => {
    const registry = createRegistry();
    register(registry);
    const p = (await registry.create('adapter', { type: 'film_mlp', inDim: 8, outDim: 16 })) as FilmProjector;
    expect(p.usesText).toBe(true);
    expect(p.numSlots({ tokens: 9 } as never)).toBe(9);
    expect(
      p
        .namedParameters()
        .map(([n]) => n)
        .sort(),
    ).toEqual(
      [
        'film.bias',
        'film.weight',
        'linear_1.bias',
        'linear_1.weight',
        'linear_2.bias',
        'linear_2.weight',
      ].sort(),
    );
  });
});
