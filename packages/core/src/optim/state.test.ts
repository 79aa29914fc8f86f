import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Initializer, LayerNorm, Linear, Module, Rng } from '../nn/index.js';
import {
  AdamW,
  computeGradients,
  cosineSchedule,
  disposeGradients,
  NO_DECAY_PATTERNS,
  type Optimizer,
  SGD,
} from './index.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

class Regressor extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(seed: number) {
    super();
    const init = new Initializer({ seed, std: 0.3 });
    this.fc1 = this.module('fc1', new Linear(4, 8, { init }));
    this.norm = this.module('norm', new LayerNorm(8));
    this.head = this.module('head', new Linear(8, 2, { init }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.head.forward(tf.relu(this.norm.forward(this.fc1.forward(x))));
  }
}

const rng = new Rng(42);
const X = Array.from({ length: 6 }, () => Array.from(rng.normal(4)));
const Y = Array.from({ length: 6 }, () => Array.from(rng.normal(2)));

function train(model: Regressor, opt: Optimizer, steps: number): void {
  for (let s = 0; s < steps; s++) {
    const { grads } = computeGradients(
      () => tf.mean(tf.square(tf.sub(model.forward(tf.tensor2d(X)), tf.tensor2d(Y)))) as tf.Scalar,
      model.namedParameters(),
    );
    opt.step(grads);
    disposeGradients(grads);
  }
}

function snapshot(model: Module): Map<string, number[]> {
  return new Map(model.namedParameters().map(([n, p]) => [n, Array.from(p.dataSync())]));
}

const optimizers: [string, (m: Module) => Optimizer][] = [
  [
    'AdamW',
    (m) =>
      new AdamW(m.namedParameters(), {
        lr: 0.05,
        weightDecay: 0.1,
        schedule: cosineSchedule({ warmupSteps: 2, totalSteps: 8 }),
        groups: [{ patterns: NO_DECAY_PATTERNS, weightDecay: 0 }],
      }),
  ],
  ['SGD', (m) => new SGD(m.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 0.01 })],
];

describe('optimizer state', () => {
  for (const [label, make] of optimizers) {
    it(`${label}: save after 3 steps, restore into a fresh optimizer and model, continue 3 → identical params`, () => {
      const a = new Regressor(1);
      const optA = make(a);
      train(a, optA, 3);
      const savedParams = new Map(a.namedParameters().map(([n, p]) => [n, tf.clone(p)]));
      const savedState = optA.state();
      const lrAtStep3 = optA.currentLr();
      expect(savedState.get('step')!.dataSync()[0]).toBe(3);
      train(a, optA, 3);

      const b = new Regressor(2);
      b.loadStateDict(savedParams);
      const optB = make(b);
      optB.loadState(savedState, { source: 'optimizer.safetensors' });
      expect(optB.stepCount).toBe(3);
      expect(optB.currentLr()).toBe(lrAtStep3);
      train(b, optB, 3);
      expect(snapshot(b)).toEqual(snapshot(a));

      // Control: without the restored state the same 3 steps land elsewhere.
      const c = new Regressor(2);
      c.loadStateDict(savedParams);
      const optC = make(c);
      train(c, optC, 3);
      expect(snapshot(c).get('fc1.weight')).not.toEqual(snapshot(a).get('fc1.weight'));

      tf.dispose([...savedParams.values(), ...savedState.values()]);
      for (const o of [optA, optB, optC]) o.dispose();
      for (const m of [a, b, c]) m.dispose();
    });
  }

  it('names buffers <param>.<slot> and rejects unknown, misshaped or step-less state', () => {
    const m = new Regressor(3);
    const opt = new AdamW(m.namedParameters(), { lr: 0.01 });
    train(m, opt, 1);
    const state = opt.state();
    expect([...state.keys()].slice(0, 2)).toEqual(['fc1.weight.exp_avg', 'fc1.weight.exp_avg_sq']);
    expect(state.size).toBe(2 * 6 + 1);
    const bad = new Map(state);
    bad.set('fc9.weight.exp_avg', tf.zeros([1]));
    bad.set('head.bias.exp_avg', tf.zeros([3]));
    expect(() => opt.loadState(bad, { source: 'opt.safetensors' })).toThrow(
      /in opt.safetensors:\n {2}head.bias.exp_avg: expected \[2\], got \[3\]\n {2}fc9.weight.exp_avg: not a buffer/,
    );
    const noStep = new Map(state);
    noStep.delete('step');
    expect(() => opt.loadState(noStep)).toThrow(/no scalar "step"/);
    tf.dispose([...bad.values(), ...state.values()]);
    opt.dispose();
    m.dispose();
  });
});

describe('freezing by pattern', () => {
  it('frozen parameters stay bit-identical (with weight decay on) and get no optimizer state', () => {
    const m = new Regressor(4);
    expect(m.setTrainable(['fc1.*', 'norm.*'], false)).toBe(4);
    const opt = new AdamW(m.namedParameters(), { lr: 0.05, weightDecay: 0.5 });
    const before = snapshot(m);
    train(m, opt, 4);
    // Even a gradient handed in explicitly does not move a frozen parameter.
    const stray = new Map([['fc1.weight', tf.onesLike(m.fc1.weight)]]);
    opt.step(stray);
    disposeGradients(stray);
    const after = snapshot(m);
    for (const name of ['fc1.weight', 'fc1.bias', 'norm.weight', 'norm.bias'])
      expect(after.get(name)).toEqual(before.get(name));
    for (const name of ['head.weight', 'head.bias']) expect(after.get(name)).not.toEqual(before.get(name));
    const state = opt.state();
    expect([...state.keys()].filter((k) => k !== 'step').every((k) => k.startsWith('head.'))).toBe(true);
    tf.dispose([...state.values()]);
    opt.dispose();
    m.dispose();
  });
});
