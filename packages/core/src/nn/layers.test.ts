import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Dropout, Embedding, Initializer, LayerNorm, Linear, Module, RMSNorm, Rng } from './index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++)
    expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

describe('Rng', () => {
  it('is deterministic by seed and draws N(0, std²)', () => {
    expect(Array.from(new Rng(7).normal(5))).toEqual(Array.from(new Rng(7).normal(5)));
    expect(Array.from(new Rng(7).normal(5))).not.toEqual(Array.from(new Rng(8).normal(5)));
    const n = 200_000;
    const xs = new Rng(1).normal(n, 2);
    let sum = 0;
    let sq = 0;
    let within = 0;
    for (const x of xs) {
      sum += x;
      sq += x * x;
      if (Math.abs(x) < 2) within++;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(sq / n) - 2)).toBeLessThan(0.02);
    expect(Math.abs(within / n - 0.6827)).toBeLessThan(0.005); // mass within one std of a normal
    const us = Array.from({ length: n }, () => new Rng(3).fork().nextFloat());
    expect(new Set(us).size).toBe(1); // fork is itself deterministic
  });
});

describe('layers', () => {
  it('Linear computes x Wᵀ + b with HF names and N(0, 0.02²) init, deterministic by seed', () => {
    const a = new Linear(64, 32, { init: new Initializer({ seed: 5 }) });
    const b = new Linear(64, 32, { init: new Initializer({ seed: 5 }) });
    expect(a.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
      ['weight', [32, 64]],
      ['bias', [32]],
    ]);
    const w = Array.from(a.weight.dataSync());
    expect(Array.from(w)).toEqual(Array.from(b.weight.dataSync()));
    const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    expect(Array.from(a.bias!.dataSync()).every((x) => x === 0)).toBe(true);

    const lin = new Linear(3, 2, { init: new Initializer(), bias: true });
    lin.loadStateDict({
      weight: tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      bias: tf.tensor1d([0.5, -1]),
    });
    const y = lin.forward(
      tf.tensor3d([
        [
          [1, 0, -1],
          [2, 1, 0],
        ],
      ]),
    );
    expect(y.shape).toEqual([1, 2, 2]);
    expectClose(y.dataSync(), [1 - 3 + 0.5, 4 - 6 - 1, 2 + 2 + 0.5, 8 + 5 - 1]);
    expect(
      new Linear(3, 2, { init: new Initializer(), bias: false }).namedParameters().map(([n]) => n),
    ).toEqual(['weight']);
    expect(() => lin.forward(tf.zeros([2, 4]))).toThrow(/last dim is 4, expected 3/);
    for (const m of [a, b, lin]) m.dispose();
  });

  it('Initializer with random: false gives zeros (weights to be loaded)', () => {
    const lin = new Linear(4, 4, { init: new Initializer({ random: false }) });
    expect(Array.from(lin.weight.dataSync()).every((x) => x === 0)).toBe(true);
    lin.dispose();
  });

  it('Embedding looks up rows and zeroes the padding row at init', () => {
    const emb = new Embedding(5, 3, { init: new Initializer({ seed: 2 }), paddingIdx: 1 });
    const table = emb.weight.arraySync();
    expect(table[1]).toEqual([0, 0, 0]);
    expect(table[0].some((x) => x !== 0)).toBe(true);
    const out = emb.forward(
      tf.tensor2d(
        [
          [4, 0],
          [1, 4],
        ],
        undefined,
        'int32',
      ),
    );
    expect(out.shape).toEqual([2, 2, 3]);
    expectClose(out.dataSync(), [...table[4], ...table[0], ...table[1], ...table[4]], 0);
    expect(() => emb.forward(tf.tensor1d([1]))).toThrow(/int32/);
    emb.dispose();
  });

  it('RMSNorm and LayerNorm match a naive reference and init to ones / zeros', () => {
    const rows = [
      [1, 2, 3, 4],
      [-2, 0.5, 0, 7],
    ];
    const gain = [1, 0.5, 2, -1];
    const shift = [0.1, 0, -0.2, 0.3];
    const rmsRef = rows.flatMap((r) => {
      const rms = Math.sqrt(r.reduce((s, x) => s + x * x, 0) / r.length + 1e-6);
      return r.map((x, i) => (x / rms) * gain[i]);
    });
    const lnRef = rows.flatMap((r) => {
      const mean = r.reduce((s, x) => s + x, 0) / r.length;
      const variance = r.reduce((s, x) => s + (x - mean) ** 2, 0) / r.length;
      return r.map((x, i) => ((x - mean) / Math.sqrt(variance + 1e-5)) * gain[i] + shift[i]);
    });
    const rms = new RMSNorm(4, 1e-6);
    const ln = new LayerNorm(4);
    expect(Array.from(rms.weight.dataSync())).toEqual([1, 1, 1, 1]);
    expect(Array.from(ln.bias.dataSync())).toEqual([0, 0, 0, 0]);
    expect(ln.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    rms.loadStateDict({ weight: tf.tensor1d(gain) });
    ln.loadStateDict({ weight: tf.tensor1d(gain), bias: tf.tensor1d(shift) });
    expectClose(rms.forward(tf.tensor2d(rows)).dataSync(), rmsRef);
    expectClose(ln.forward(tf.tensor2d(rows)).dataSync(), lnRef);
    expect(() => ln.forward(tf.zeros([1, 3]))).toThrow(/LayerNorm: input last dim is 3, expected 4/);
    rms.dispose();
    ln.dispose();
  });

  it('Dropout is identity in eval mode and inverted dropout in train mode', () => {
    class Net extends Module {
      readonly drop = this.module('drop', new Dropout(0.25, new Rng(9)));
    }
    const net = new Net();
    const x = tf.ones([100_000]);
    expect(net.training).toBe(false);
    expect(net.drop.forward(x)).toBe(x);
    net.train();
    expect(net.drop.training).toBe(true);
    const y1 = net.drop.forward(x).dataSync();
    const y2 = net.drop.forward(x).dataSync();
    const zeros = y1.filter((v) => v === 0).length;
    expect(Math.abs(zeros / y1.length - 0.25)).toBeLessThan(0.01);
    expect(y1.filter((v) => v !== 0).every((v) => Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    expect(Array.from(y1)).not.toEqual(Array.from(y2)); // fresh mask per call
    net.eval();
    expect(net.drop.training).toBe(false);
    expect(() => new Dropout(1, new Rng(0))).toThrow(/\[0, 1\)/);
  });

  it('a composed model gets HF-style dotted names and identical weights for the same seed', () => {
    class Block extends Module {
      readonly norm: RMSNorm;
      readonly proj: Linear;
      constructor(init: Initializer) {
        super();
        this.norm = this.module('input_layernorm', new RMSNorm(8));
        this.proj = this.module('q_proj', new Linear(8, 8, { init, bias: false }));
      }
    }
    class Tiny extends Module {
      readonly embed: Embedding;
      readonly layers: Block[];
      constructor(seed: number) {
        super();
        const init = new Initializer({ seed });
        this.embed = this.module('embed_tokens', new Embedding(10, 8, { init }));
        this.layers = [0, 1].map((i) => this.module(i, new Block(init)));
      }
    }
    const a = new Tiny(3);
    const b = new Tiny(3);
    const c = new Tiny(4);
    expect(a.namedParameters().map(([n]) => n)).toEqual([
      'embed_tokens.weight',
      '0.input_layernorm.weight',
      '0.q_proj.weight',
      '1.input_layernorm.weight',
      '1.q_proj.weight',
    ]);
    const flat = (m: Tiny) => m.parameters().flatMap((p) => Array.from(p.dataSync()));
    expect(flat(a)).toEqual(flat(b));
    expect(flat(a)).not.toEqual(flat(c));
    // Two layers built from one stream differ.
    expect(Array.from(a.layers[0].proj.weight.dataSync())).not.toEqual(
      Array.from(a.layers[1].proj.weight.dataSync()),
    );
    for (const m of [a, b, c]) m.dispose();
  });
});
