// Held-out evidence that a tower learnt something: a linear probe (softmax regression on frozen features,
// standardised with the training rows' statistics) next to the same probe fitted to shuffled training labels,
// and image→text retrieval recall@k next to the recall of shuffled pairs.
import { AdamW, computeGradients, disposeGradients, Rng, tf } from '@vistune/core';

export interface ProbeRows {
  /** [rows, dim] row-major. */
  x: Float32Array;
  /** Class id per row. */
  y: Int32Array;
}

export interface ProbeResult {
  /** Held-out accuracy of the probe fitted to the true labels. */
  accuracy: number;
  /** Held-out accuracy of the probe fitted to shuffled training labels (the control). */
  shuffled: number;
  /** Share of the held-out rows in their most frequent class. */
  majority: number;
  trainRows: number;
  heldOutRows: number;
}

export interface ProbeOptions {
  seed?: number;
  steps?: number;
  lr?: number;
}

/** A permutation of 0..n-1 from a seeded generator. */
export function shuffledOrder(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

function fitAndScore(
  train: ProbeRows,
  heldOut: ProbeRows,
  dim: number,
  classes: number,
  opts: ProbeOptions,
): number {
  const rows = train.y.length;
  const mean = new Float32Array(dim);
  const std = new Float32Array(dim);
  for (let r = 0; r < rows; r++)
    for (let d = 0; d < dim; d++) mean[d] += (train.x[r * dim + d] as number) / rows;
  for (let r = 0; r < rows; r++)
    for (let d = 0; d < dim; d++)
      std[d] += ((train.x[r * dim + d] as number) - (mean[d] as number)) ** 2 / rows;
  const scale = std.map((v) => 1 / Math.sqrt(v + 1e-6));
  const standardise = (x: Float32Array, n: number) =>
    tf.tidy(
      () => tf.mul(tf.sub(tf.tensor2d(x, [n, dim]), tf.tensor1d(mean)), tf.tensor1d(scale)) as tf.Tensor2D,
    );
  const xs = standardise(train.x, rows);
  const ys = tf.oneHot(tf.tensor1d(train.y, 'int32'), classes);
  const weight = tf.variable(tf.zeros([dim, classes]), true);
  const bias = tf.variable(tf.zeros([classes]), true);
  const params: [string, tf.Variable][] = [
    ['probe.weight', weight],
    ['probe.bias', bias],
  ];
  const optimizer = new AdamW(params, { lr: opts.lr ?? 0.05, weightDecay: 1e-3 });
  try {
    for (let step = 0; step < (opts.steps ?? 200); step++) {
      const { grads } = computeGradients(
        () => tf.losses.softmaxCrossEntropy(ys, tf.add(tf.matMul(xs, weight), bias)) as tf.Scalar,
        params,
      );
      optimizer.step(grads);
      disposeGradients(grads);
    }
    const n = heldOut.y.length;
    const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(standardise(heldOut.x, n), weight), bias), 1));
    const ids = predicted.dataSync();
    predicted.dispose();
    let right = 0;
    for (let i = 0; i < n; i++) if (ids[i] === heldOut.y[i]) right++;
    return n ? right / n : 0;
  } finally {
    optimizer.dispose();
    tf.dispose([xs, ys, weight, bias]);
  }
}

/** Fits the probe on `train`, scores `heldOut`, and does the same with the training labels shuffled. */
export function linearProbe(
  train: ProbeRows,
  heldOut: ProbeRows,
  dim: number,
  classes: number,
  opts: ProbeOptions = {},
): ProbeResult {
  if (train.y.length === 0 || heldOut.y.length === 0)
    throw new Error('linearProbe: no rows to fit or score: the data carries no labels the probe can use');
  const order = shuffledOrder(train.y.length, new Rng(opts.seed ?? 0));
  const shuffledY = Int32Array.from(order, (i) => train.y[i] as number);
  const counts = new Map<number, number>();
  for (const y of heldOut.y) counts.set(y, (counts.get(y) ?? 0) + 1);
  return {
    accuracy: fitAndScore(train, heldOut, dim, classes, opts),
    shuffled: fitAndScore({ x: train.x, y: shuffledY }, heldOut, dim, classes, opts),
    majority: Math.max(...counts.values()) / heldOut.y.length,
    trainRows: train.y.length,
    heldOutRows: heldOut.y.length,
  };
}

/**
 * Image→text recall@k: the share of images whose own text (or an identical text) is among the k most similar
 * texts. `pairs` maps image i to text pairs[i] (identity for the real pairs, a permutation for the control).
 */
export function retrievalRecall(
  images: tf.Tensor2D,
  texts: tf.Tensor2D,
  keys: readonly string[],
  k: number,
  pairs: readonly number[] = keys.map((_, i) => i),
): number {
  const similarity = tf.matMul(images, texts, false, true);
  const { indices } = tf.topk(similarity, Math.min(k, keys.length));
  const top = indices.arraySync() as number[][];
  tf.dispose([similarity, indices]);
  let hits = 0;
  top.forEach((row, i) => {
    const wanted = keys[pairs[i] as number];
    if (row.some((j) => keys[j] === wanted)) hits++;
  });
  return keys.length ? hits / keys.length : 0;
}
