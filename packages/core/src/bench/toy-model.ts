// A tiny pre-norm decoder (learned positions, RMSNorm, causal MHA, SiLU MLP, LM head) written against a
// swappable op set, so the same train step runs on the op layer and on the naive tfjs baseline.
import * as tf from '@tensorflow/tfjs-core';
import {
  type AttentionOptions,
  attention,
  crossEntropy,
  embedding,
  linear,
  rmsNorm,
  silu,
} from '../ops/index.js';
import { naiveAttention, naiveCrossEntropy, naiveEmbedding, naiveLinear, naiveRmsNorm } from './naive.js';

export interface OpSet {
  linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor;
  rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor;
  attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts?: AttentionOptions): tf.Tensor4D;
  crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, ignoreIndex?: number): tf.Scalar;
  embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor;
}
export const OP_LAYER: OpSet = { linear, rmsNorm, attention, crossEntropy, embedding };
export const NAIVE_OPS: OpSet = {
  linear: naiveLinear,
  rmsNorm: naiveRmsNorm,
  attention: naiveAttention,
  crossEntropy: naiveCrossEntropy,
  embedding: naiveEmbedding,
};

export interface ToyConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  seqLen: number;
  batch: number;
}

export interface ToyModel {
  config: ToyConfig;
  params: tf.Variable[];
  /** Mean next-token cross-entropy of ids [B, T+1] (inputs ids[:, :-1], labels ids[:, 1:]). */
  loss(ops: OpSet, ids: tf.Tensor2D): tf.Scalar;
  dispose(): void;
}

let toyModelCount = 0;

export function createToyModel(config: ToyConfig, seed = 1): ToyModel {
  const { vocab, dim, layers, heads, seqLen } = config;
  const tag = `toy${toyModelCount++}`;
  const params: tf.Variable[] = [];
  const param = (name: string, shape: number[], init: 'normal' | 'ones') => {
    const value =
      init === 'ones' ? tf.ones(shape) : tf.randomNormal(shape, 0, 0.02, 'float32', seed + params.length);
    const v = tf.variable(value, true, `${tag}.${name}`);
    value.dispose();
    params.push(v);
    return v;
  };
  const wte = param('wte', [vocab, dim], 'normal') as tf.Variable<tf.Rank.R2>;
  const wpe = param('wpe', [seqLen, dim], 'normal') as tf.Variable<tf.Rank.R2>;
  const blocks = Array.from({ length: layers }, (_, i) => ({
    norm1: param(`h${i}.norm1`, [dim], 'ones') as tf.Variable<tf.Rank.R1>,
    wq: param(`h${i}.wq`, [dim, dim], 'normal') as tf.Variable<tf.Rank.R2>,
    wk: param(`h${i}.wk`, [dim, dim], 'normal') as tf.Variable<tf.Rank.R2>,
    wv: param(`h${i}.wv`, [dim, dim], 'normal') as tf.Variable<tf.Rank.R2>,
    wo: param(`h${i}.wo`, [dim, dim], 'normal') as tf.Variable<tf.Rank.R2>,
    norm2: param(`h${i}.norm2`, [dim], 'ones') as tf.Variable<tf.Rank.R1>,
    up: param(`h${i}.up`, [4 * dim, dim], 'normal') as tf.Variable<tf.Rank.R2>,
    down: param(`h${i}.down`, [dim, 4 * dim], 'normal') as tf.Variable<tf.Rank.R2>,
  }));
  const normF = param('normF', [dim], 'ones') as tf.Variable<tf.Rank.R1>;
  const head = param('lmHead', [vocab, dim], 'normal') as tf.Variable<tf.Rank.R2>;

  const loss = (ops: OpSet, ids: tf.Tensor2D): tf.Scalar => {
    const [B, T1] = ids.shape;
    const T = T1 - 1;
    const inputs = tf.slice(ids, [0, 0], [B, T]);
    const labels = tf.reshape(tf.slice(ids, [0, 1], [B, T]), [B * T]) as tf.Tensor1D;
    const positions = tf.range(0, T, 1, 'int32');
    let x = tf.add(ops.embedding(wte, inputs), ops.embedding(wpe, positions)); // [B, T, D]
    const headDim = dim / heads;
    const toHeads = (t: tf.Tensor) =>
      tf.transpose(tf.reshape(t, [B, T, heads, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
    for (const blk of blocks) {
      const h = ops.rmsNorm(x, blk.norm1, 1e-5);
      const a = ops.attention(
        toHeads(ops.linear(h, blk.wq)),
        toHeads(ops.linear(h, blk.wk)),
        toHeads(ops.linear(h, blk.wv)),
        { causal: true },
      );
      x = tf.add(x, ops.linear(tf.reshape(tf.transpose(a, [0, 2, 1, 3]), [B, T, dim]), blk.wo));
      const m = ops.linear(silu(ops.linear(ops.rmsNorm(x, blk.norm2, 1e-5), blk.up)), blk.down);
      x = tf.add(x, m);
    }
    const logits = ops.linear(tf.reshape(ops.rmsNorm(x, normF, 1e-5), [B * T, dim]), head) as tf.Tensor2D;
    return ops.crossEntropy(logits, labels);
  };
  return { config, params, loss, dispose: () => tf.dispose(params) };
}

/** Random token ids [batch, seqLen + 1] from a fixed seed. */
export function toyBatch(config: ToyConfig, seed = 3): tf.Tensor2D {
  return tf.randomUniform([config.batch, config.seqLen + 1], 0, config.vocab, 'int32', seed) as tf.Tensor2D;
}
