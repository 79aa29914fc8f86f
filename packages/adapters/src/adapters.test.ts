import { fileURLToPath } from 'node:url';
import { createRegistry, Initializer, initBackend, loadSafetensors, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  LinearProjectorConfigSchema,
  MlpProjectorConfigSchema,
  PixelShuffleProjectorConfigSchema,
} from './config.js';
import { LinearProjector } from './linear.js';
import { MlpProjector, mlpProjectorParamName } from './mlp.js';
import { PixelShuffleProjector, pixelShuffle } from './pixel-shuffle.js';
import { register } from './register.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../../../fixtures/tiny-llava-hf/${name}`, import.meta.url));

/** Deterministic values in [-2, 2]. */
function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => 2 * Math.sin(seed * 7919 + i * 1.618));
}

/** erf by its Maclaurin series in float64 (|x| < 6 is plenty for these inputs); 1 beyond. */
function erf(x: number): number {
  if (Math.abs(x) > 6) return Math.sign(x);
  let sum = 0;
  let term = x; // x^(2n+1) (-1)^n / n!
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const geluExact = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** y = x Wᵀ + b on plain arrays; W [out][in]. */
function dense(x: number[], W: number[][], b?: number[]): number[] {
  return W.map((row, o) => row.reduce((s, w, i) => s + w * x[i], b ? b[o] : 0));
}

function maxAbsDiff(a: number[], b: number[]): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('LinearProjector', () => {
  it('maps [N, tokens, in] to [N, tokens, out] as x Wᵀ + b, one slot per token', () => {
    const p = new LinearProjector(
      LinearProjectorConfigSchema.parse({ inDim: 4, outDim: 3 }),
      new Initializer({ seed: 1, std: 0.5 }),
    );
    const x = tf.tensor3d(values(2 * 5 * 4, 1), [2, 5, 4]);
    const y = p.forward(x, { layout: { tokens: 5, prefixTokens: 0 } });
    expect(y.shape).toEqual([2, 5, 3]);
    expect(p.numSlots({ tokens: 5, prefixTokens: 0 })).toBe(5);
    const W = p.weight.arraySync();
    const b = p.bias!.arraySync();
    const xs = x.arraySync();
    const want = xs.flatMap((item) => item.flatMap((tok) => dense(tok, W, b)));
    expect(maxAbsDiff(Array.from(y.dataSync()), want)).toBeLessThan(1e-5);
    expect(p.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    tf.dispose([x, y]);
    p.dispose();
  });
});

describe('MlpProjector', () => {
  it('has HF LlavaMultiModalProjector names and maps original LLaVA names', () => {
    const p = new MlpProjector(MlpProjectorConfigSchema.parse({ inDim: 8, outDim: 6 }));
    expect(p.namedParameters().map(([n]) => n)).toEqual([
      'linear_1.weight',
      'linear_1.bias',
      'linear_2.weight',
      'linear_2.bias',
    ]);
    expect(mlpProjectorParamName('model.mm_projector.0.weight')).toBe('linear_1.weight');
    expect(mlpProjectorParamName('mm_projector.2.bias')).toBe('linear_2.bias');
    expect(mlpProjectorParamName('linear_2.bias')).toBe('linear_2.bias');
    const weights = new Map(
      p
        .namedParameters()
        .map(([n, v]) => [
          n.replace(/^linear_(\d)/, (_, k) => `model.mm_projector.${2 * (Number(k) - 1)}`),
          tf.onesLike(v),
        ]),
    );
    p.loadStateDict(weights);
    expect(p.layers[1].bias!.arraySync()).toEqual(new Array(6).fill(1));
    tf.dispose([...weights.values()]);
    p.dispose();
  });

  it('reproduces the fixture projector (multi_modal_projector.*) against a plain-JS reference', async () => {
    const config = JSON.parse(
      await import('node:fs/promises').then((fs) => fs.readFile(fixture('config.json'), 'utf8')),
    );
    const inDim = config.vision_config.hidden_size as number;
    const outDim = config.text_config.hidden_size as number;
    const weights = await loadSafetensors(fixture('model.safetensors'), {
      names: (n) => n.startsWith('multi_modal_projector.'),
      rename: (n) => n.slice('multi_modal_projector.'.length),
    });
    const p = new MlpProjector(
      MlpProjectorConfigSchema.parse({ inDim, outDim, act: config.projector_hidden_act }),
      new Initializer({ random: false }),
    );
    p.loadStateDict(weights, { source: 'fixture model.safetensors' });
    const [N, tokens] = [2, 16];
    const x = tf.tensor3d(values(N * tokens * inDim, 3), [N, tokens, inDim]);
    const y = p.forward(x, { layout: { tokens, prefixTokens: 0 } });
    expect(y.shape).toEqual([N, tokens, outDim]);
    const W1 = weights.get('linear_1.weight')!.arraySync() as number[][];
    const b1 = weights.get('linear_1.bias')!.arraySync() as number[];
    const W2 = weights.get('linear_2.weight')!.arraySync() as number[][];
    const b2 = weights.get('linear_2.bias')!.arraySync() as number[];
    const want = x
      .arraySync()
      .flatMap((item) => item.flatMap((tok) => dense(dense(tok, W1, b1).map(geluExact), W2, b2)));
    const maxRef = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxRef).toBeGreaterThan(0.01);
    expect(maxAbsDiff(Array.from(y.dataSync()), want)).toBeLessThan(1e-5 * Math.max(1, maxRef));
    tf.dispose([x, y, ...weights.values()]);
    p.dispose();
  });

  it('chains depth Linears with the activation in between (mlp3x_gelu)', () => {
    const p = new MlpProjector(
      MlpProjectorConfigSchema.parse({ inDim: 3, outDim: 2, depth: 3, act: 'relu' }),
      new Initializer({ seed: 4, std: 0.7 }),
    );
    const x = tf.tensor3d(values(3, 5), [1, 1, 3]);
    const y = p.forward(x, { layout: { tokens: 1, prefixTokens: 0 } });
    const [l1, l2, l3] = p.layers.map((l) => [l.weight.arraySync(), l.bias!.arraySync()] as const);
    const relu = (v: number[]) => v.map((a) => Math.max(0, a));
    const want = dense(relu(dense(relu(dense(x.arraySync()[0][0], ...l1)), ...l2)), ...l3);
    expect(maxAbsDiff(Array.from(y.dataSync()), want)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    p.dispose();
  });
});

describe('pixel shuffle', () => {
  /** Output token (i, j), channel (di·s + dj)·D + d = input patch (i·s + di, j·s + dj), feature d. */
  function naivePixelShuffle(x: number[][][], rows: number, cols: number, s: number): number[][][] {
    return x.map((item) => {
      const out: number[][] = [];
      for (let i = 0; i < rows / s; i++) {
        for (let j = 0; j < cols / s; j++) {
          const token: number[] = [];
          for (let di = 0; di < s; di++)
            for (let dj = 0; dj < s; dj++) token.push(...item[(i * s + di) * cols + (j * s + dj)]);
          out.push(token);
        }
      }
      return out;
    });
  }

  it.each([
    [4, 4, 2, 3],
    [6, 4, 2, 2],
    [6, 9, 3, 2],
    [4, 4, 1, 2],
  ])('matches a naive loop for a %i×%i grid, factor %i, D=%i', (rows, cols, s, D) => {
    const N = 2;
    const x = tf.tensor3d(values(N * rows * cols * D, rows * 10 + cols), [N, rows * cols, D]);
    const y = pixelShuffle(x, [rows, cols], s);
    expect(y.shape).toEqual([N, (rows / s) * (cols / s), s * s * D]);
    expect(y.arraySync()).toEqual(naivePixelShuffle(x.arraySync(), rows, cols, s));
    tf.dispose([x, y]);
  });

  it('PixelShuffleProjector: s² fewer slots, Linear over s²·D features, video frames shuffled separately', () => {
    const cfg = PixelShuffleProjectorConfigSchema.parse({ inDim: 3, outDim: 5, factor: 2 });
    const p = new PixelShuffleProjector(cfg, new Initializer({ seed: 2, std: 0.3 }));
    expect(p.namedParameters().map(([n, v]) => [n, v.shape])).toEqual([['proj.weight', [5, 12]]]);
    const layout = { tokens: 2 * 16, prefixTokens: 0, grid: [4, 4] as const, frames: 2 };
    expect(p.numSlots(layout)).toBe(8);
    const x = tf.tensor3d(values(32 * 3, 9), [1, 32, 3]);
    const y = p.forward(x, { layout });
    expect(y.shape).toEqual([1, 8, 5]);
    const W = p.proj.weight.arraySync();
    const frames = [x.arraySync()[0].slice(0, 16), x.arraySync()[0].slice(16)];
    const want = naivePixelShuffle(frames, 4, 4, 2).flatMap((frame) => frame.flatMap((tok) => dense(tok, W)));
    expect(maxAbsDiff(Array.from(y.dataSync()), want)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    p.dispose();
  });

  it('rejects a CLS token and grids the factor does not divide, saying what to do', () => {
    const p = new PixelShuffleProjector(
      PixelShuffleProjectorConfigSchema.parse({ inDim: 3, outDim: 5, factor: 2 }),
    );
    expect(() => p.numSlots({ tokens: 17, prefixTokens: 1, grid: [4, 4] })).toThrow(/strategy 'default'/);
    expect(() => p.numSlots({ tokens: 9, prefixTokens: 0 })).toThrow(/3×3 is not divisible by factor 2/);
    p.dispose();
  });
});

describe('gradients on wasm', () => {
  it('reach every projector parameter', () => {
    const p = new MlpProjector(
      MlpProjectorConfigSchema.parse({ inDim: 4, outDim: 4 }),
      new Initializer({ seed: 3 }),
    );
    const x = tf.tensor3d(values(2 * 3 * 4, 6), [2, 3, 4]);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.square(p.forward(x, { layout: { tokens: 3, prefixTokens: 0 } }))) as tf.Scalar,
    );
    expect(Object.keys(grads)).toHaveLength(4);
    for (const g of Object.values(grads)) expect(tf.sum(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, value, ...Object.values(grads)]);
    p.dispose();
  });
});

describe('register', () => {
  it('adds linear, mlp2x_gelu (alias mlp), pixel_shuffle and film_mlp (among the connectors), validated with config paths', async () => {
    const registry = createRegistry();
    register(registry);
    expect(registry.list('adapter').map((e) => e.name)).toEqual(
      expect.arrayContaining(['film_mlp', 'linear', 'mlp', 'mlp2x_gelu', 'pixel_shuffle']),
    );
    const mlp = (await registry.create('adapter', { type: 'mlp', inDim: 4, outDim: 6 })) as MlpProjector;
    expect(mlp).toBeInstanceOf(MlpProjector);
    expect(mlp.config).toMatchObject({ depth: 2, act: 'gelu', bias: true });
    const shuffle = (await registry.create('adapter', {
      type: 'pixel_shuffle',
      inDim: 4,
      outDim: 6,
      factor: 3,
    })) as PixelShuffleProjector;
    expect(shuffle.numSlots({ tokens: 36, prefixTokens: 0, grid: [6, 6] })).toBe(4);
    await expect(
      registry.create(
        'adapter',
        { type: 'mlp2x_gelu', inDim: 4, outdim: 6 },
        { path: 'modalities.image.adapter' },
      ),
    ).rejects.toThrow(/modalities.image.adapter.outDim: missing[\s\S]*unknown key 'outdim'/);
    for (const m of [mlp, shuffle]) m.dispose();
  });
});
