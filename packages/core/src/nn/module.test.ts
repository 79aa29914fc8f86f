import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Module } from './module.js';

class Block extends Module {
  readonly w = this.param('weight', tf.ones([2, 3]));
  readonly b = this.param('bias', tf.zeros([2]));
}
class Net extends Module {
  readonly layers = [0, 1].map((i) => this.module(i, new Block()));
  readonly head = this.module('head', new Block());
}

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('Module', () => {
  it('names parameters with HF-style dotted paths and counts them', () => {
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      'head.weight',
      'head.bias',
    ]);
    expect(net.numParameters()).toBe(24);
    expect(net.trainOnly(['head.*'])).toBe(2);
    expect(net.numParameters({ trainableOnly: true })).toBe(8);
    net.dispose();
  });

  it('loads a state dict strictly and reports missing, unexpected and misshaped names', () => {
    const net = new Net();
    const sd = new Map(net.namedParameters().map(([n, p]) => [n, tf.mul(p, 2)]));
    net.loadStateDict(sd);
    expect(Array.from(net.head.w.dataSync())).toEqual([2, 2, 2, 2, 2, 2]);
    sd.delete('head.bias');
    sd.set('extra', tf.zeros([1]));
    expect(() => net.loadStateDict(sd, { source: 'x.safetensors' })).toThrow(
      /missing: head.bias[\s\S]*unexpected: extra/,
    );
    expect(net.loadStateDict(sd, { strict: false })).toEqual({
      missing: ['head.bias'],
      unexpected: ['extra'],
    });
    sd.set('head.bias', tf.zeros([3]));
    expect(() => net.loadStateDict(sd, { strict: false })).toThrow(/head.bias: expected \[2\], got \[3\]/);
    net.dispose();
  });
});
