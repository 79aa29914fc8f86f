// Scaled dot-product attention with a hand-written backward. GQA groups the query heads that share a
// kv head into one [rep·T, D] block, so K and V are never repeated and each product is larger.
import * as tf from '@tensorflow/tfjs-core';
import { customGrad } from './custom-grad.js';
import { runJsKernel } from './kernels/js-kernel.js';
import { splitRows } from './kernels/split.js';
import { rawMatmul, transposeLast2 } from './matmul.js';
import { opPolicy } from './policy.js';
import { reshape } from './shape.js';

export interface AttentionOptions {
  /** Causal mask; with queryOffset the query i sits at absolute position queryOffset + i (KV-cache decode). */
  causal?: boolean;
  queryOffset?: number;
  /** Key padding mask [B, S]: 1 = attend, 0 = padding. */
  keyMask?: tf.Tensor2D;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
}

/** Added to masked scores: exp(−1e9 − max) is exactly 0 in float32, and no −Infinity reaches a NaN. */
const MASKED = -1e9;

/**
 * Causal mask values by (rep, T, S, offset), kept on the host: every layer of every step asks for the same
 * one, and tfjs's broadcast compare + tile on wasm took ~12 ms per layer to build it. (Host arrays, not
 * tensors, so nothing outlives the caller's scope.)
 */
const causalMaskValues = new Map<string, Float32Array>();
const CAUSAL_MASKS_KEPT = 8;

/** [1, 1, rep·T, S]: query row r (position offset + r mod T) may see keys ≤ its position. */
function causalMask(rep: number, T: number, S: number, offset: number): tf.Tensor {
  const key = `${rep},${T},${S},${offset}`;
  let values = causalMaskValues.get(key);
  if (!values) {
    values = new Float32Array(rep * T * S);
    for (let r = 0; r < rep * T; r++) {
      const position = offset + (r % T);
      values.fill(MASKED, r * S + Math.max(0, Math.min(S, position + 1)), (r + 1) * S);
    }
    if (causalMaskValues.size >= CAUSAL_MASKS_KEPT) causalMaskValues.clear();
    causalMaskValues.set(key, values);
  }
  return tf.tensor4d(values, [1, 1, rep * T, S]);
}

/** Additive mask [B or 1, 1, rep·T, S] (0 = attend, MASKED = not), or null when nothing is masked. */
function additiveMask(
  B: number,
  rep: number,
  T: number,
  S: number,
  opts: AttentionOptions,
): tf.Tensor | null {
  let mask: tf.Tensor | null = opts.causal ? causalMask(rep, T, S, opts.queryOffset ?? S - T) : null;
  if (opts.keyMask) {
    if (opts.keyMask.shape[0] !== B || opts.keyMask.shape[1] !== S) {
      throw new Error(
        `attention: keyMask shape [${opts.keyMask.shape}] must be [batch, keyLength] = [${B}, ${S}]`,
      );
    }
    const padding = tf.reshape(tf.mul(tf.sub(1, tf.cast(opts.keyMask, 'float32')), MASKED), [B, 1, 1, S]);
    mask = mask ? tf.add(mask, padding) : padding;
  }
  return mask;
}

/**
 * softmax(q·kᵀ·scale + mask)·v on [N, R, D] blocks (N = B·Hkv, R = rep·T); backward from the saved
 * probabilities P and output O: dV = Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)), dQ = dS·K·scale, dK = dSᵀ·Q·scale.
 */
const groupedAttention = (scale: number, B: number, makeMask: () => tf.Tensor | null) =>
  customGrad(([q, k, v]: [tf.Tensor, tf.Tensor, tf.Tensor], save) => {
    const [N, R] = q.shape as [number, number, number];
    const S = (k.shape as [number, number, number])[1];
    const mask = makeMask(); // built inside the forward: a tidy around the caller cannot dispose it early
    let scores = rawMatmul(tf.mul(q, scale), k, false, true); // [N, R, S]
    if (mask) scores = tf.reshape(tf.add(tf.reshape(scores, [B, N / B, R, S]), mask), [N, R, S]);
    const p = tf.softmax(scores);
    const o = rawMatmul(p, v);
    save([q, k, v, p, o]);
    return {
      value: o,
      gradFunc: (dO, [sq, sk, sv, sp, so]) => {
        const dV = rawMatmul(sp, dO, true, false);
        const dP = rawMatmul(dO, sv, false, true);
        const dS = tf.mul(sp, tf.sub(dP, tf.sum(tf.mul(dO, so), -1, true)));
        const dQ = tf.mul(rawMatmul(dS, sk), scale);
        const dK = tf.mul(rawMatmul(dS, sq, true, false), scale);
        return [dQ, dK, dV];
      },
    };
  });

/** tf.unstack along axis 0 (wasm/cpu: one memcpy per slice through a JS kernel; wasm's Unpack is ~9 ns/element). */
function unstack(x: tf.Tensor): tf.Tensor[] {
  if (!opPolicy().jsKernels || x.dtype !== 'float32') return tf.unstack(x);
  const [N, ...rest] = x.shape;
  const rows = runJsKernel(splitRows, { x: tf.reshape(x, [N, -1]) }, { size: 1 });
  return rows.map((r) => tf.reshape(r, rest));
}

/**
 * The same computation one [R, D]·[D, S] block at a time, with every intermediate kept per block: on wasm
 * only 2D products reach XNNPACK, and unstacking [N, R, S] tensors (P, dS) costs more than the products.
 */
const groupedAttentionPerBlock = (scale: number, B: number, makeMask: () => tf.Tensor | null) =>
  customGrad(([q, k, v]: [tf.Tensor, tf.Tensor, tf.Tensor], save) => {
    const [N, R, D] = q.shape as [number, number, number];
    const S = (k.shape as [number, number, number])[1];
    const mask = makeMask();
    const masks = mask ? unstack(tf.reshape(mask, [mask.shape[0], R, S])) : []; // one per batch row (or shared)
    const qs = unstack(tf.mul(q, scale)); // scaled once: dK = dSᵀ·(q·scale)
    const kTs = unstack(transposeLast2(k));
    const vs = unstack(v);
    const ps: tf.Tensor[] = [];
    const os: tf.Tensor[] = [];
    for (let n = 0; n < N; n++) {
      let scores = tf.matMul(qs[n], kTs[n]);
      if (mask) scores = tf.add(scores, masks[masks.length === 1 ? 0 : Math.floor(n / (N / B))]);
      ps.push(tf.softmax(scores));
      os.push(tf.matMul(ps[n], vs[n]));
    }
    save([k, v, ...qs, ...ps, ...os]);
    return {
      value: tf.stack(os),
      gradFunc: (dO, saved) => {
        const [sk, sv] = saved;
        const [sqs, sps, sos] = [
          saved.slice(2, 2 + N),
          saved.slice(2 + N, 2 + 2 * N),
          saved.slice(2 + 2 * N),
        ];
        const dOs = unstack(dO);
        const ks = unstack(sk);
        const vTs = unstack(transposeLast2(sv));
        const dQs: tf.Tensor[] = [];
        const dKs: tf.Tensor[] = [];
        const dVs: tf.Tensor[] = [];
        for (let n = 0; n < N; n++) {
          dVs.push(tf.matMul(transposeLast2(sps[n]), dOs[n]));
          const dP = tf.matMul(dOs[n], vTs[n]);
          const dS = tf.mul(sps[n], tf.sub(dP, tf.sum(tf.mul(dOs[n], sos[n]), -1, true)));
          dQs.push(tf.matMul(dS, ks[n]));
          dKs.push(tf.matMul(transposeLast2(dS), sqs[n]));
        }
        return [tf.mul(tf.stack(dQs), scale), tf.stack(dKs), tf.reshape(tf.stack(dVs), [N, S, D])];
      },
    };
  });

/** Scaled dot-product attention. q: [B, H, T, D], k/v: [B, Hkv, S, D] with H % Hkv == 0 (GQA) → [B, H, T, D]. */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  opts: AttentionOptions = {},
): tf.Tensor4D {
  const [B, H, T, D] = q.shape;
  const [kB, Hkv, S, kD] = k.shape;
  if (kB !== B || kD !== D || H % Hkv !== 0 || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new Error(
      `attention: shapes q [${q.shape}], k [${k.shape}], v [${v.shape}] must be [B,H,T,D], [B,Hkv,S,D] ×2 with H % Hkv == 0`,
    );
  }
  const rep = H / Hkv;
  // [B, H, T, D] = [B, Hkv, rep, T, D] → [B·Hkv, rep·T, D]: head h uses kv head floor(h / rep), as HF's repeat_kv.
  const perBlock =
    opPolicy().explicitTranspose && rep * T * D * S >= opPolicy().perSliceMinWork && B * Hkv > 1;
  const core = perBlock ? groupedAttentionPerBlock : groupedAttention;
  const out = core(opts.scale ?? 1 / Math.sqrt(D), B, () => additiveMask(B, rep, T, S, opts))(
    reshape(q, [B * Hkv, rep * T, D]),
    reshape(k, [B * Hkv, S, D]),
    reshape(v, [B * Hkv, S, D]),
  );
  return reshape(out, [B, H, T, D]) as tf.Tensor4D;
}
