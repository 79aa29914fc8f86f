import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { type AttentionOptions, attention } from './attention.js';
import { setOpPolicy } from './policy.js';
import { analyticGrads, closeness, det, weighted } from './testing.js';

const UNCHUNKED = { chunkedAttentionMinScores: Number.POSITIVE_INFINITY };
/** Every call chunked, in blocks small enough that each case has several, uneven ones. */
const chunkedIn = (attentionBlock: number) => ({ chunkedAttentionMinScores: 0, attentionBlock });

interface Case {
  name: string;
  B: number;
  H: number;
  Hkv: number;
  T: number;
  S: number;
  opts: () => AttentionOptions;
}

const padding = (rows: number[][]) => tf.tensor2d(rows, undefined, 'int32') as tf.Tensor2D;

const CASES: Case[] = [
  { name: 'plain MHA', B: 2, H: 2, Hkv: 2, T: 7, S: 7, opts: () => ({}) },
  { name: 'causal GQA', B: 1, H: 4, Hkv: 2, T: 9, S: 9, opts: () => ({ causal: true }) },
  {
    name: 'causal GQA, queries after a cache (T < S)',
    B: 2,
    H: 3,
    Hkv: 1,
    T: 4,
    S: 10,
    opts: () => ({ causal: true }),
  },
  {
    name: 'causal with queryOffset and key padding',
    B: 2,
    H: 2,
    Hkv: 1,
    T: 5,
    S: 8,
    opts: () => ({
      causal: true,
      queryOffset: 2,
      keyMask: padding([
        [0, 0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1, 0],
      ]),
    }),
  },
  {
    name: 'a fully padded row and a custom scale',
    B: 2,
    H: 2,
    Hkv: 2,
    T: 3,
    S: 6,
    opts: () => ({
      scale: 0.3,
      keyMask: padding([
        [0, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 1, 1],
      ]),
    }),
  },
];

function inputs(c: Case): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const D = 4;
  return [
    tf.mul(det([c.B, c.H, c.T, D], 1), 3) as tf.Tensor4D, // scores of a few units: the softmax is not flat
    tf.mul(det([c.B, c.Hkv, c.S, D], 2), 3) as tf.Tensor4D,
    det([c.B, c.Hkv, c.S, D], 3) as tf.Tensor4D,
  ];
}

/**
 * [B, H, T, 1]: 1 where query row (b, h, t) sees at least one key. A row that sees none is undefined in both
 * forms (the unchunked softmax spreads it over every hidden key, the chunked one over the blocks it visits);
 * in a model such rows are padding, whose outputs feed no loss and no other row, so tests leave them out.
 */
function rowsThatSeeAKey(c: Case): Float32Array {
  const opts = c.opts();
  const mask = opts.keyMask ? opts.keyMask.dataSync() : null;
  opts.keyMask?.dispose();
  const offset = opts.queryOffset ?? c.S - c.T;
  const seen = new Float32Array(c.B * c.H * c.T);
  for (let i = 0; i < seen.length; i++) {
    const [b, t] = [Math.floor(i / (c.H * c.T)), i % c.T];
    for (let s = 0; s < c.S; s++)
      if (!(opts.causal && s > offset + t) && (mask === null || mask[b * c.S + s] === 1)) seen[i] = 1;
  }
  return seen;
}

/** Value (rows that see a key) and gradients (q, k, v) of attention under the backend's current policy. */
function run(c: Case, x: tf.Tensor[]): { value: Float32Array; grads: Float32Array[] } {
  const opts = c.opts();
  const seen = tf.tensor4d(rowsThatSeeAKey(c), [c.B, c.H, c.T, 1]);
  const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
    tf.mul(attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, opts), seen);
  const y = tf.tidy(() => f(x[0], x[1], x[2]));
  const value = y.dataSync().slice() as Float32Array;
  y.dispose();
  const grads = analyticGrads((...xs) => weighted(f(xs[0], xs[1], xs[2])), x);
  tf.dispose([seen, opts.keyMask ?? []]);
  return { value, grads };
}

/**
 * Plain float64 attention and its gradients for L = Σ W ⊙ O (W = weighted()'s weights), written out element
 * by element from the definitions, sharing nothing with the op layer.
 */
function float64Reference(c: Case, x: tf.Tensor[], weights: Float32Array) {
  const opts = c.opts();
  const seen = rowsThatSeeAKey(c);
  const [q, k, v] = x.map((t) => Float64Array.from(t.dataSync()));
  const mask = opts.keyMask ? opts.keyMask.dataSync() : null;
  opts.keyMask?.dispose();
  const { B, H, Hkv, T, S } = c;
  const D = 4;
  const rep = H / Hkv;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const offset = opts.queryOffset ?? S - T;
  const out = new Float64Array(B * H * T * D);
  const [dq, dk, dv] = [new Float64Array(q.length), new Float64Array(k.length), new Float64Array(v.length)];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / rep)) * S * D;
      for (let t = 0; t < T; t++) {
        const qBase = ((b * H + h) * T + t) * D;
        if (seen[qBase / D] === 0) continue;
        const scores = Array.from({ length: S }, (_, s) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qBase + d] * k[kvBase + s * D + d];
          const hidden = (opts.causal && s > offset + t) || (mask !== null && mask[b * S + s] === 0);
          return dot * scale + (hidden ? -1e9 : 0);
        });
        const top = Math.max(...scores);
        const e = scores.map((z) => Math.exp(z - top));
        const total = e.reduce((a, z) => a + z, 0);
        const p = e.map((z) => z / total);
        // O = P·V; dP = dO·Vᵀ; dS = P ⊙ (dP − Σ P ⊙ dP); dQ = dS·K·scale; dK = dSᵀ·Q·scale; dV = Pᵀ·dO
        const dO = Array.from({ length: D }, (_, d) => weights[qBase + d]);
        const dP = p.map((_, s) => dO.reduce((a, g, d) => a + g * v[kvBase + s * D + d], 0));
        const pdP = p.reduce((a, ps, s) => a + ps * dP[s], 0);
        for (let s = 0; s < S; s++) {
          const dS = p[s] * (dP[s] - pdP);
          for (let d = 0; d < D; d++) {
            out[qBase + d] += p[s] * v[kvBase + s * D + d];
            dv[kvBase + s * D + d] += p[s] * dO[d];
            dq[qBase + d] += dS * k[kvBase + s * D + d] * scale;
            dk[kvBase + s * D + d] += dS * q[qBase + d] * scale;
          }
        }
      }
    }
  return { value: out, grads: [dq, dk, dv] };
}

describe.each(['wasm', 'cpu'] as const)('chunked attention on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterEach(() => setOpPolicy(backend, null));

  it('a row that sees no key stays finite', () => {
    setOpPolicy(backend, chunkedIn(2));
    const c = CASES[CASES.length - 1];
    const opts = c.opts();
    const x = inputs(c);
    const y = attention(x[0], x[1], x[2], opts);
    expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([y, ...x, opts.keyMask ?? []]);
  });

  it.each(CASES.map((c) => [c.name, c] as const))(
    'matches the unchunked attention in value and gradient: %s',
    (_name, c) => {
      const x = inputs(c);
      setOpPolicy(backend, UNCHUNKED);
      const want = run(c, x);
      for (const block of [2, 3, 64]) {
        setOpPolicy(backend, chunkedIn(block));
        const got = run(c, x);
        expect(closeness(got.value, want.value, 1e-5, 1e-6), `value, block ${block}`).toBeLessThan(1);
        for (const [i, g] of got.grads.entries())
          expect(closeness(g, want.grads[i], 1e-4, 1e-6), `gradient ${i}, block ${block}`).toBeLessThan(1);
      }
      tf.dispose(x);
    },
  );

  it.each(CASES.map((c) => [c.name, c] as const))(
    'chunked and unchunked match a float64 reference: %s',
    (_name, c) => {
      const x = inputs(c);
      const weights = tf.tidy(() => {
        const probe = tf.zeros([c.B, c.H, c.T, 4]);
        return tf
          .grad((y: tf.Tensor) => weighted(y))(probe)
          .dataSync()
          .slice() as Float32Array;
      });
      const want = float64Reference(c, x, weights);
      for (const policy of [UNCHUNKED, chunkedIn(3)]) {
        setOpPolicy(backend, policy);
        const got = run(c, x);
        expect(closeness(got.value, want.value, 1e-5, 1e-6)).toBeLessThan(1);
        for (const [i, g] of got.grads.entries())
          expect(closeness(g, want.grads[i], 1e-4, 1e-6), `gradient ${i}`).toBeLessThan(1);
      }
      tf.dispose(x);
    },
  );

  it('the policy picks the chunked form by size, and its memory stays below one S² score tensor', async () => {
    // [1, 2, 1024, 8] causal: the unchunked form saves P of 2·1024·1024 floats = 8 MB; the chunked form's
    // working set is a few [2, 64, 64] blocks plus O(S·D) accumulators
    const [T, D] = [1024, 8];
    const q = det([1, 2, T, D], 1) as tf.Tensor4D;
    const k = det([1, 2, T, D], 2) as tf.Tensor4D;
    const v = det([1, 2, T, D], 3) as tf.Tensor4D;
    const scoresBytes = 2 * T * T * 4;
    const measure = async () => {
      const profile = await tf.profile(() => {
        const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          weighted(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, { causal: true })),
        )([q, k, v]);
        tf.dispose(grads);
      });
      return { peak: profile.peakBytes };
    };
    setOpPolicy(backend, { chunkedAttentionMinScores: 2 * T * T + 1, attentionBlock: 64 });
    const below = await measure();
    setOpPolicy(backend, { chunkedAttentionMinScores: 2 * T * T, attentionBlock: 64 });
    const atThreshold = await measure();
    expect(below.peak).toBeGreaterThan(scoresBytes);
    expect(atThreshold.peak).toBeLessThan(scoresBytes / 3);
    expect(atThreshold.peak).toBeLessThan(below.peak / 8);
    tf.dispose([q, k, v]);
  });
});
