import * as tf from '@tensorflow/tfjs-core';
import { embedding } from '../ops/index.js';
import type { Initializer } from './init.js';
import { Module } from './module.js';

export interface EmbeddingOptions {
  init: Initializer;
  /** Row zeroed at init, as HF `_init_weights` does for `padding_idx` (its gradient is not masked). */
  paddingIdx?: number;
}

/** torch.nn.Embedding: HF name `weight` [numEmbeddings, embeddingDim]. */
export class Embedding extends Module {
  readonly weight: tf.Variable<tf.Rank.R2>;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: EmbeddingOptions,
  ) {
    super();
    const table = opts.init.normal([numEmbeddings, embeddingDim]) as tf.Tensor2D;
    const pad = opts.paddingIdx;
    if (pad !== undefined && (pad < 0 || pad >= numEmbeddings || !Number.isInteger(pad))) {
      throw new Error(`Embedding: paddingIdx ${pad} is outside [0, ${numEmbeddings})`);
    }
    const init =
      pad === undefined
        ? table
        : tf.tidy(() => {
            const isPad = tf.reshape(tf.equal(tf.range(0, numEmbeddings, 1, 'int32'), pad), [
              numEmbeddings,
              1,
            ]);
            return tf.where(tf.broadcastTo(isPad, table.shape), tf.zerosLike(table), table) as tf.Tensor2D;
          });
    if (init !== table) table.dispose();
    this.weight = this.param('weight', init);
  }

  /** ids: int32 of any shape → [...ids.shape, embeddingDim]. */
  forward(ids: tf.Tensor): tf.Tensor {
    if (ids.dtype !== 'int32') throw new Error(`Embedding: ids must be int32, got ${ids.dtype}`);
    return embedding(this.weight, ids);
  }
}
