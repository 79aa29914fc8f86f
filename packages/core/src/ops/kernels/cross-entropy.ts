// Cross-entropy from softmax probabilities (XNNPACK's softmax on wasm is one vectorised pass; tfjs's Exp is
// scalar and ~3× slower): the loss reads one probability per row, the gradient is one pass p·s − s·onehot.
import type * as tf from '@tensorflow/tfjs-core';
import type { JsKernel, Values } from './js-kernel.js';

/** Below this a probability may have lost precision to underflow: that row's loss is recomputed exactly. */
const SMALLEST_TRUSTED_PROBABILITY = 1e-30;

/** max(x) + log Σ exp(x − max) − x[label] over one row: the exact loss when p[label] underflows. */
function exactRowLoss(x: Values, start: number, V: number, label: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < V; j++) if (x[start + j] > max) max = x[start + j];
  let sum = 0;
  for (let j = 0; j < V; j++) sum += Math.exp(x[start + j] - max);
  return max + Math.log(sum) - x[start + label];
}

/**
 * Per-row loss −log p[label] ([N] float32); rows with label −1 give 0. Inputs: logits [N, V], probs =
 * softmax(logits), labels [N] int32.
 */
export const softmaxCrossEntropyLoss: JsKernel<object> = {
  name: 'VistuneSoftmaxCrossEntropyLoss',
  inputs: ['logits', 'probs', 'labels'],
  outputs: ([logits]) => [{ shape: [logits.shape[0]], dtype: 'float32' }],
  compute([logits, probs, labels], [loss], _attrs, [info]) {
    const [N, V] = info.shape;
    for (let i = 0; i < N; i++) {
      const label = labels[i];
      if (label === -1) {
        loss[i] = 0;
        continue;
      }
      if (!(label >= 0 && label < V))
        throw new Error(`crossEntropy: label ${label} at row ${i} is outside the vocabulary [0, ${V})`);
      const p = probs[i * V + label];
      loss[i] = p > SMALLEST_TRUSTED_PROBABILITY ? -Math.log(p) : exactRowLoss(logits, i * V, V, label);
    }
  },
};

/**
 * d loss / d logits = s_i · (p − onehot(label_i)) per row ([N, V]); s_i = rowScale[i] (0 for ignored rows).
 */
export const softmaxCrossEntropyGrad: JsKernel<object> = {
  name: 'VistuneSoftmaxCrossEntropyGrad',
  inputs: ['probs', 'labels', 'rowScale'],
  outputs: ([probs]) => [{ shape: probs.shape, dtype: 'float32' }],
  compute([probs, labels, rowScale], [grad], _attrs, [info]: tf.TensorInfo[]) {
    const [N, V] = info.shape;
    for (let i = 0; i < N; i++) {
      const s = rowScale[i];
      const row = i * V;
      if (s === 0) {
        grad.fill(0, row, row + V);
        continue;
      }
      for (let j = 0; j < V; j++) grad[row + j] = probs[row + j] * s;
      const label = labels[i];
      if (label >= 0) grad[row + label] -= s;
    }
  },
};
