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
  const causal = opts.causal ? causalMask(rep, T, S, opts.queryOffset ?? S - T) : null;
  const padding = paddingMask(B, S, opts.keyMask);
  return causal && padding ? tf.add(causal, padding) : (causal ?? padding);
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

/** Additive key padding [B, 1, 1, S] (0 = attend, MASKED = padding), or null without a keyMask. */
function paddingMask(B: number, S: number, keyMask: tf.Tensor2D | undefined): tf.Tensor | null {
  if (!keyMask) return null;
  if (keyMask.shape[0] !== B || keyMask.shape[1] !== S) {
    throw new Error(`attention: keyMask shape [${keyMask.shape}] must be [batch, keyLength] = [${B}, ${S}]`);
  }
  return tf.reshape(tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), MASKED), [B, 1, 1, S]);
}

/** What one chunked call needs to know about its shapes and masks. */
interface ChunkPlan {
  scale: number;
  B: number;
  rep: number;
  T: number;
  S: number;
  /** Absolute position of query 0 (causal only). */
  offset: number;
  causal: boolean;
  block: number;
}

/** [start, length] of every block of `block` positions in [0, n). */
function blocks(n: number, block: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let start = 0; start < n; start += block) out.push([start, Math.min(block, n - start)]);
  return out;
}

/** Rows t0 … t0+len of every query head in the grouped layout: [N, rep·T, W] → [N, rep·len, W]. */
function queryRows(x: tf.Tensor, plan: ChunkPlan, t0: number, len: number): tf.Tensor {
  const [N, , W] = x.shape as [number, number, number];
  const rows = tf.slice(tf.reshape(x, [N, plan.rep, plan.T, W]), [0, 0, t0, 0], [N, plan.rep, len, W]);
  return tf.reshape(rows, [N, plan.rep * len, W]);
}

/** Inverse of queryRows over all blocks: per-block [N, rep·len, W] pieces → [N, rep·T, W]. */
function joinQueryRows(pieces: tf.Tensor[], plan: ChunkPlan): tf.Tensor {
  const [N, , W] = pieces[0].shape as [number, number, number];
  const byHead = pieces.map((p) => tf.reshape(p, [N, plan.rep, -1, W]));
  return tf.reshape(tf.concat(byHead, 2), [N, plan.rep * plan.T, W]);
}

/**
 * False when the causal mask hides key block s0… from every query of block t0…t0+tLen (never the first key
 * block, so a row that sees no key stays defined, uniform as in the unchunked softmax).
 */
function blockVisible(plan: ChunkPlan, [t0, tLen]: [number, number], [s0]: [number, number]): boolean {
  return !plan.causal || s0 === 0 || s0 <= plan.offset + t0 + tLen - 1;
}

/** Scores of query block (t0, tLen) against key block (s0, sLen) given kBlock [N, sLen, D], masked: [N, rep·tLen, sLen]. */
function blockScores(
  plan: ChunkPlan,
  qScaled: tf.Tensor,
  kBlock: tf.Tensor,
  padding: tf.Tensor | null,
  [t0, tLen]: [number, number],
  [s0, sLen]: [number, number],
): tf.Tensor {
  const N = kBlock.shape[0];
  let scores = rawMatmul(qScaled, kBlock, false, true);
  const needsCausal = plan.causal && s0 + sLen - 1 > plan.offset + t0; // some key lies after some query
  if (!needsCausal && !padding) return scores;
  const R = plan.rep * tLen;
  let mask = needsCausal ? causalMask(plan.rep, tLen, sLen, plan.offset + t0 - s0) : null;
  if (padding) {
    const keys = tf.slice(padding, [0, 0, 0, s0], [plan.B, 1, 1, sLen]);
    mask = mask ? tf.add(mask, keys) : keys;
  }
  scores = tf.add(tf.reshape(scores, [plan.B, N / plan.B, R, sLen]), mask as tf.Tensor);
  return tf.reshape(scores, [N, R, sLen]);
}

/**
 * softmax over one block's keys and the block's log-sum-exp [N, R, 1]. The backend's Softmax kernel is used
 * because wasm's Exp runs ~35 ns/element (XNNPACK's softmax is vectorised); log Σ exp(s) is recovered without
 * another pass as max(s) − log(max p), and max p ≥ 1/keys keeps that exact to float rounding.
 */
function blockSoftmax(scores: tf.Tensor): { p: tf.Tensor; lse: tf.Tensor } {
  const p = tf.softmax(scores);
  return { p, lse: tf.sub(tf.max(scores, -1, true), tf.log(tf.max(p, -1, true))) };
}

/** log(exp a + exp b), elementwise and stable. */
function logAddExp(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const top = tf.maximum(a, b);
  return tf.add(top, tf.log(tf.add(tf.exp(tf.sub(a, top)), tf.exp(tf.sub(b, top)))));
}

/** Key blocks of k and v: [N, S, D] → [N, len, D] per block (sliced once per call, not per query block). */
function keySlices(x: tf.Tensor, keyBlocks: Array<[number, number]>): tf.Tensor[] {
  const [N, , D] = x.shape as [number, number, number];
  return keyBlocks.map(([s0, len]) => tf.slice(x, [0, s0, 0], [N, len, D]));
}

/** acc + next, freeing acc (accumulators carried across tidy scopes). */
function accumulate(acc: tf.Tensor | null, next: tf.Tensor): tf.Tensor {
  if (!acc) return next;
  const sum = tf.add(acc, next);
  tf.dispose([acc, next]);
  return sum;
}

/**
 * The grouped attention one query block × key block at a time, never holding more than one block's scores:
 * the forward keeps each query block's running log-sum-exp L and normalised output O (online softmax: a new
 * key block's softmax·V enters with weight exp(L_block − L_new), the old output with exp(L_old − L_new)) and
 * saves only O and L; the backward recomputes each block's P = exp(S − L) = softmax_block(S)·exp(L_block − L)
 * and applies groupedAttention's formulas, accumulating dQ per query block and dK, dV per key block.
 */
const chunkedAttention = (plan: ChunkPlan, keyMask: tf.Tensor2D | undefined) =>
  customGrad(([q, k, v]: [tf.Tensor, tf.Tensor, tf.Tensor], save) => {
    const padding = paddingMask(plan.B, plan.S, keyMask);
    const queryBlocks = blocks(plan.T, plan.block);
    const keyBlocks = blocks(plan.S, plan.block);
    const [kBlocks, vBlocks] = [keySlices(k, keyBlocks), keySlices(v, keyBlocks)];
    const outputs: tf.Tensor[] = [];
    const logSumExps: tf.Tensor[] = [];
    for (const qb of queryBlocks) {
      const qScaled = tf.tidy(() => tf.mul(queryRows(q, plan, qb[0], qb[1]), plan.scale));
      let lse: tf.Tensor | null = null; // running log Σ exp(s) [N, R, 1]
      let out: tf.Tensor | null = null; // running softmax·V over the key blocks so far [N, R, D]
      for (const [j, kb] of keyBlocks.entries()) {
        if (!blockVisible(plan, qb, kb)) continue;
        const next: tf.Tensor[] = tf.tidy(() => {
          const block = blockSoftmax(blockScores(plan, qScaled, kBlocks[j], padding, qb, kb));
          const pv = rawMatmul(block.p, vBlocks[j]);
          if (!lse || !out) return [block.lse, pv];
          const lseNew = logAddExp(lse, block.lse);
          const kept = tf.mul(out, tf.exp(tf.sub(lse, lseNew)));
          return [lseNew, tf.add(kept, tf.mul(pv, tf.exp(tf.sub(block.lse, lseNew))))];
        });
        tf.dispose([lse, out].filter((t): t is tf.Tensor => t !== null));
        [lse, out] = next;
      }
      outputs.push(out as tf.Tensor);
      logSumExps.push(lse as tf.Tensor);
      qScaled.dispose();
    }
    const o = joinQueryRows(outputs, plan);
    const lse = joinQueryRows(logSumExps, plan);
    tf.dispose([...outputs, ...logSumExps, ...kBlocks, ...vBlocks]);
    save(padding ? [q, k, v, o, lse, padding] : [q, k, v, o, lse]);
    return {
      value: o,
      gradFunc: (dO, [sq, sk, sv, so, sLse, sPadding]) => {
        const [ks, vs] = [keySlices(sk, keyBlocks), keySlices(sv, keyBlocks)];
        const dKs: Array<tf.Tensor | null> = keyBlocks.map(() => null);
        const dVs: Array<tf.Tensor | null> = keyBlocks.map(() => null);
        const queryGrads: tf.Tensor[] = [];
        for (const qb of queryBlocks) {
          const [qScaled, dOBlock, lseBlock, delta] = tf.tidy(() => {
            const dOb = queryRows(dO, plan, qb[0], qb[1]);
            return [
              tf.mul(queryRows(sq, plan, qb[0], qb[1]), plan.scale),
              dOb,
              queryRows(sLse, plan, qb[0], qb[1]),
              tf.sum(tf.mul(dOb, queryRows(so, plan, qb[0], qb[1])), -1, true), // rowsum(dO ⊙ O)
            ];
          });
          let dQ: tf.Tensor | null = null;
          for (const [j, kb] of keyBlocks.entries()) {
            if (!blockVisible(plan, qb, kb)) continue;
            const next = tf.tidy(() => {
              const block = blockSoftmax(blockScores(plan, qScaled, ks[j], sPadding ?? null, qb, kb));
              const p = tf.mul(block.p, tf.exp(tf.sub(block.lse, lseBlock)));
              const dS = tf.mul(p, tf.sub(rawMatmul(dOBlock, vs[j], false, true), delta));
              return {
                dV: rawMatmul(p, dOBlock, true, false),
                dQ: rawMatmul(dS, ks[j]),
                dK: rawMatmul(dS, qScaled, true, false),
              };
            });
            dQ = accumulate(dQ, next.dQ);
            dKs[j] = accumulate(dKs[j], next.dK);
            dVs[j] = accumulate(dVs[j], next.dV);
          }
          queryGrads.push(tf.mul(dQ as tf.Tensor, plan.scale));
          tf.dispose([qScaled, dOBlock, lseBlock, delta, dQ as tf.Tensor]);
        }
        // a key block no query block reached (causal, queries before it) has zero gradient
        const orZeros = (g: tf.Tensor | null, j: number) => g ?? tf.zerosLike(ks[j]);
        const dK = tf.concat(dKs.map(orZeros), 1);
        const dV = tf.concat(dVs.map(orZeros), 1);
        return [joinQueryRows(queryGrads, plan), dK, dV];
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
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const policy = opPolicy();
  // [B, H, T, D] = [B, Hkv, rep, T, D] → [B·Hkv, rep·T, D]: head h uses kv head floor(h / rep), as HF's repeat_kv.
  const grouped = [
    reshape(q, [B * Hkv, rep * T, D]),
    reshape(k, [B * Hkv, S, D]),
    reshape(v, [B * Hkv, S, D]),
  ] as const;
  let out: tf.Tensor;
  if (B * Hkv * rep * T * S >= policy.chunkedAttentionMinScores) {
    const plan: ChunkPlan = {
      scale,
      B,
      rep,
      T,
      S,
      offset: opts.queryOffset ?? S - T,
      causal: opts.causal ?? false,
      block: policy.attentionBlock,
    };
    out = chunkedAttention(plan, opts.keyMask)(...grouped);
  } else {
    const perBlock = policy.explicitTranspose && rep * T * D * S >= policy.perSliceMinWork && B * Hkv > 1;
    const core = perBlock ? groupedAttentionPerBlock : groupedAttention;
    out = core(scale, B, () => additiveMask(B, rep, T, S, opts))(...grouped);
  }
  return reshape(out, [B, H, T, D]) as tf.Tensor4D;
}
