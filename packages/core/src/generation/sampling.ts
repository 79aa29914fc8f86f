// Token choice from a row of logits: greedy argmax and seeded multinomial sampling.
import { softmaxProbabilities } from './logits.js';

/** A source of uniform numbers in [0, 1). */
export type UniformRandom = () => number;

/** Index of the largest logit; ties go to the lowest id, as torch.argmax. NaN is an error. */
export function greedyToken(logits: Float32Array): number {
  let best = 0;
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i]))
      throw new Error(`greedyToken: logit ${i} is NaN; the model produced invalid values.`);
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

/** Mulberry32: a small 32-bit PRNG, so sampling is reproducible from `seed`. */
export function samplingRandom(seed: number): UniformRandom {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws one token id with probability softmax(logits), by inverting the cumulative distribution. */
export function sampleToken(logits: Float32Array, random: UniformRandom): number {
  const probs = softmaxProbabilities(logits);
  const u = random();
  let cumulative = 0;
  let lastPossible = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cumulative += probs[i];
    lastPossible = i;
    if (u < cumulative) return i;
  }
  // Rounding can leave the total a hair below u; the draw then belongs to the last possible token.
  return lastPossible;
}
