import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Rng } from '../nn/rng.js';
import { AdamW, cosineSchedule, type LrSchedule, NO_DECAY_PATTERNS, SGD } from './index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

type Params = Record<string, number[]>;

/** torch.optim.AdamW in plain JS: decay p -= lr·wd·p, then the bias-corrected Adam update. */
function adamwReference(
  init: Params,
  gradSteps: Params[],
  hp: {
    lr: Record<string, number>;
    wd: Record<string, number>;
    schedule: LrSchedule;
    b1: number;
    b2: number;
    eps: number;
  },
): Params[] {
  const p: Params = structuredClone(init);
  const m: Params = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, v.map(() => 0)]));
  const v: Params = structuredClone(m);
  const history: Params[] = [];
  gradSteps.forEach((grads, k) => {
    const t = k + 1;
    for (const name of Object.keys(p)) {
      const lr = hp.lr[name] * hp.schedule(k);
      for (let i = 0; i < p[name].length; i++) {
        const g = grads[name][i];
        p[name][i] -= lr * hp.wd[name] * p[name][i];
        m[name][i] = hp.b1 * m[name][i] + (1 - hp.b1) * g;
        v[name][i] = hp.b2 * v[name][i] + (1 - hp.b2) * g * g;
        const mHat = m[name][i] / (1 - hp.b1 ** t);
        const vHat = v[name][i] / (1 - hp.b2 ** t);
        p[name][i] -= (lr * mHat) / (Math.sqrt(vHat) + hp.eps);
      }
    }
    history.push(structuredClone(p));
  });
  return history;
}

/** torch.optim.SGD (no dampening) in plain JS. */
function sgdReference(
  init: Params,
  gradSteps: Params[],
  hp: { lr: number; wd: number; mu: number; nesterov: boolean },
) {
  const p: Params = structuredClone(init);
  const buf: Params = {};
  return gradSteps.map((grads) => {
    for (const name of Object.keys(p)) {
      const d = p[name].map((x, i) => grads[name][i] + hp.wd * x);
      if (!buf[name]) buf[name] = [...d];
      else buf[name] = buf[name].map((b, i) => hp.mu * b + d[i]);
      const step = hp.nesterov ? d.map((x, i) => x + hp.mu * buf[name][i]) : buf[name];
      p[name] = p[name].map((x, i) => x - hp.lr * step[i]);
    }
    return structuredClone(p);
  });
}

const shapes: Record<string, number[]> = {
  'proj.weight': [3, 2],
  'proj.bias': [3],
  'input_layernorm.weight': [2],
};

function randomParams(rng: Rng): Params {
  return Object.fromEntries(
    Object.entries(shapes).map(([k, s]) => [k, Array.from(rng.normal(tf.util.sizeFromShape(s)))]),
  );
}

function variables(p: Params): [string, tf.Variable][] {
  return Object.entries(p).map(([k, v]) => [k, tf.variable(tf.tensor(v, shapes[k]))]);
}

function gradMap(g: Params): Map<string, tf.Tensor> {
  return new Map(Object.entries(g).map(([k, v]) => [k, tf.tensor(v, shapes[k])]));
}

function expectParams(vars: [string, tf.Variable][], expected: Params, tol: number): void {
  for (const [name, v] of vars) {
    const got = v.dataSync();
    expected[name].forEach((x, i) => {
      expect(Math.abs(got[i] - x)).toBeLessThan(tol * (1 + Math.abs(x)));
    });
  }
}

describe('AdamW', () => {
  it('matches torch AdamW maths step by step, with per-group lr / weight decay and a warmup-cosine schedule', () => {
    const rng = new Rng(11);
    const init = randomParams(rng);
    const grads = Array.from({ length: 6 }, () => randomParams(rng));
    const schedule = cosineSchedule({ warmupSteps: 2, totalSteps: 6 });
    const vars = variables(init);
    const opt = new AdamW(vars, {
      lr: 0.1,
      weightDecay: 0.2,
      betas: [0.8, 0.95],
      eps: 1e-6,
      schedule,
      groups: [{ patterns: NO_DECAY_PATTERNS, weightDecay: 0, lr: 0.05 }],
    });
    expect(opt.groups.map((g) => [g.lr, g.weightDecay, g.names])).toEqual([
      [0.05, 0, ['proj.bias', 'input_layernorm.weight']],
      [0.1, 0.2, ['proj.weight']],
    ]);
    const expected = adamwReference(init, grads, {
      lr: { 'proj.weight': 0.1, 'proj.bias': 0.05, 'input_layernorm.weight': 0.05 },
      wd: { 'proj.weight': 0.2, 'proj.bias': 0, 'input_layernorm.weight': 0 },
      schedule,
      b1: 0.8,
      b2: 0.95,
      eps: 1e-6,
    });
    grads.forEach((g, k) => {
      expect(opt.currentLr(1)).toBeCloseTo(0.1 * schedule(k), 12);
      const gm = gradMap(g);
      opt.step(gm);
      tf.dispose([...gm.values()]);
      expectParams(vars, expected[k], 2e-6);
    });
    expect(opt.stepCount).toBe(6);
    // The first step ran at lr 0 (warmup): weights may only move from step 2 on, and did.
    expect(Array.from(vars[0][1].dataSync())).not.toEqual(init['proj.weight']);
    opt.dispose();
    tf.dispose(vars.map(([, v]) => v));
  });

  it('leaves parameters without a gradient untouched and rejects unknown or misshaped gradients', () => {
    const vars = variables(randomParams(new Rng(1)));
    const before = Array.from(vars[1][1].dataSync());
    const opt = new AdamW(vars, { lr: 0.1, weightDecay: 0.1 });
    opt.step(new Map([['proj.weight', tf.ones([3, 2])]]));
    expect(Array.from(vars[1][1].dataSync())).toEqual(before);
    expect(() => opt.step(new Map([['nope', tf.ones([1])]]))).toThrow(/"nope", which is not a parameter/);
    expect(() => opt.step(new Map([['proj.bias', tf.ones([2])]]))).toThrow(
      /"proj.bias" has shape \[2\], parameter is \[3\]/,
    );
    opt.dispose();
  });
});

describe('SGD', () => {
  for (const nesterov of [false, true]) {
    it(`matches torch SGD with momentum and weight decay (nesterov ${nesterov})`, () => {
      const rng = new Rng(5);
      const init = randomParams(rng);
      const grads = Array.from({ length: 4 }, () => randomParams(rng));
      const vars = variables(init);
      const opt = new SGD(vars, { lr: 0.1, weightDecay: 0.01, momentum: 0.9, nesterov });
      const expected = sgdReference(init, grads, { lr: 0.1, wd: 0.01, mu: 0.9, nesterov });
      grads.forEach((g, k) => {
        const gm = gradMap(g);
        opt.step(gm);
        tf.dispose([...gm.values()]);
        expectParams(vars, expected[k], 2e-6);
      });
      opt.dispose();
    });
  }
});
