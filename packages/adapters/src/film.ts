// Instruction-conditioned projector (FiLM, Perez et al. 2018): the MLP projector's hidden features are scaled and
// shifted per image by the mean embedding of the prompt's text, so each visual token can answer "am I what the
// question asks about?" before the LLM reads it — the InstructBLIP idea at the cost of one Linear.
import {
  type Adapter,
  type AdapterContext,
  activation,
  type FeatureLayout,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { FilmProjectorConfig } from './config.js';

export class FilmProjector extends Module implements Adapter {
  readonly usesText = true;
  readonly inDim: number;
  readonly outDim: number;
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  /** Text mean [textDim] → [γ; β], each [outDim]. */
  readonly film: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(
    readonly config: FilmProjectorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.act = activation(config.act);
    const bias = config.bias;
    this.linear_1 = this.module('linear_1', new Linear(config.inDim, config.outDim, { init, bias }));
    this.linear_2 = this.module('linear_2', new Linear(config.outDim, config.outDim, { init, bias }));
    // The text embeddings are the LLM's, so their width is the output width.
    this.film = this.module('film', new Linear(config.outDim, 2 * config.outDim, { init, bias: true }));
  }

  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }

  /** features [N, tokens, inDim] → [N, tokens, outDim], each item conditioned on its sample's prompt text. */
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    const text = ctx.text;
    if (!text)
      throw new Error(
        'film_mlp projector: no prompt text was passed (ctx.text); it runs inside MultimodalModel, which passes it to adapters with usesText',
      );
    return tf.tidy(() => {
      const mask = tf.expandDims(text.mask, 2); // [N, T, 1]
      const count = tf.maximum(tf.sum(mask, 1), 1); // [N, 1]
      const prompt = tf.div(tf.sum(tf.mul(text.embeds, mask), 1), count) as tf.Tensor2D; // [N, textDim]
      const [gamma, beta] = tf.split(this.film.forward(prompt), 2, 1);
      const h = this.linear_1.forward(features); // [N, tokens, outDim]
      const modulated = tf.add(tf.mul(h, tf.add(1, tf.expandDims(gamma, 1))), tf.expandDims(beta, 1));
      return this.linear_2.forward(this.act(modulated) as tf.Tensor3D) as tf.Tensor3D;
    });
  }
}
