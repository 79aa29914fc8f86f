// Shared by the train/ tests (not exported from the package): a tiny real MultimodalModel built from core
// pieces (LLaMA + a set encoder + a LLaVA-style MLP projector) and an in-memory BatchSource with a seeded
// per-epoch shuffle, so data position is real state a resumed run must restore.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BatchSource, BatchSourceState } from '../data/types.js';
import { saveSafetensors } from '../io/safetensors-write.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { type MultimodalBatch, MultimodalModel } from '../multimodal/model.js';
import type {
  Adapter,
  EncodeOptions,
  EncoderOutput,
  FeatureLayout,
  ModalityEncoder,
} from '../multimodal/types.js';
import { Initializer } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { Rng } from '../nn/rng.js';
import { gelu } from '../ops/index.js';
import { parseRecipe, type Recipe } from './recipe.js';

export const IMAGE_TOKEN = 47;
const BOS = 1;
const EOS = 2;
const PAD = 0;
const HIDDEN = 16;
const ITEM_TOKENS = 4;
const ITEM_CHANNELS = 6;

/** Items [tokens, channels] → Linear embedding, then one tanh(Linear) layer; hidden states [embed, layer 1]. */
class SetEncoder extends Module implements ModalityEncoder {
  readonly hiddenSize = 8;
  readonly numHiddenStates = 2;
  readonly embed: Linear;
  readonly layer: Linear;
  constructor(init: Initializer) {
    super();
    this.embed = this.module('embed', new Linear(ITEM_CHANNELS, this.hiddenSize, { init }));
    this.layer = this.module('layer', new Linear(this.hiddenSize, this.hiddenSize, { init }));
  }
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    return { tokens: itemShape[0], prefixTokens: 0 };
  }
  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    const h0 = this.embed.forward(batch) as tf.Tensor3D;
    const states = [h0, tf.tanh(this.layer.forward(h0)) as tf.Tensor3D];
    const wanted = (opts.hiddenStates ?? [-1]).map((i) => states[i < 0 ? states.length + i : i]);
    return { hiddenStates: wanted, layout: this.featureLayout(batch.shape.slice(1)) };
  }
}

/** LLaVA-1.5's mlp2x_gelu projector with HF names linear_1 / linear_2. */
class MlpProjector extends Module implements Adapter {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(
    readonly inDim: number,
    readonly outDim: number,
    init: Initializer,
  ) {
    super();
    this.linear1 = this.module('linear_1', new Linear(inDim, outDim, { init }));
    this.linear2 = this.module('linear_2', new Linear(outDim, outDim, { init }));
  }
  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }
  forward(features: tf.Tensor3D): tf.Tensor3D {
    return this.linear2.forward(gelu(this.linear1.forward(features))) as tf.Tensor3D;
  }
}

/** Saves itself as model.safetensors by parameter name (it has no family), so the Trainer's default save works. */
class ToyMultimodalModel extends MultimodalModel {
  override async save(dir: string): Promise<void> {
    await saveSafetensors(join(dir, 'model.safetensors'), this.stateDict());
  }
}

/** The same seed gives the same weights. */
export function tinyMultimodalModel(seed = 0): MultimodalModel {
  const llm = new LlamaForCausalLM(
    parseLlamaConfig({
      model_type: 'llama',
      vocab_size: 48,
      hidden_size: HIDDEN,
      intermediate_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
    }),
    { seed },
  );
  const init = new Initializer({ seed: seed + 1, std: 0.3 });
  const encoder = new SetEncoder(init);
  return new ToyMultimodalModel({
    llm,
    modalities: {
      image: {
        placeholderTokenId: IMAGE_TOKEN,
        encoder,
        select: { layer: -1, strategy: 'full' },
        adapter: new MlpProjector(encoder.hiddenSize, HIDDEN, init),
      },
    },
  });
}

export interface ToySample {
  /** 0..3: decides the image pattern and the caption. */
  label: number;
  /** Caption length 1..3 (+ EOS), so batches need padding. */
  words: number;
  /** Noise seed of the image; NaN makes the image NaN (a corrupt input). */
  noise: number;
}

/** `count` samples cycling through the classes and caption lengths. */
export function toySamples(count: number): ToySample[] {
  return Array.from({ length: count }, (_, i) => ({ label: i % 4, words: 1 + (i % 3), noise: i }));
}

function sampleImage(s: ToySample): tf.Tensor2D {
  const rng = new Rng(Number.isNaN(s.noise) ? 0 : s.noise + 100);
  const v = new Float32Array(ITEM_TOKENS * ITEM_CHANNELS);
  for (let i = 0; i < v.length; i++)
    v[i] = Number.isNaN(s.noise) ? Number.NaN : Math.cos(i * (s.label + 1)) + 0.1 * (rng.nextFloat() - 0.5);
  return tf.tensor2d(v, [ITEM_TOKENS, ITEM_CHANNELS]);
}

/** [BOS, IMAGE×4, caption…, EOS]; labels supervise the caption and EOS only. */
function sampleIds(s: ToySample): { ids: number[]; labels: number[] } {
  const caption = Array.from({ length: s.words }, (_, w) => 10 + 4 * w + s.label);
  const ids = [BOS, ...Array(ITEM_TOKENS).fill(IMAGE_TOKEN), ...caption, EOS];
  const labels = ids.map((id, t) => (t <= ITEM_TOKENS ? -100 : id));
  return { ids, labels };
}

/** Right-padded batch of samples (pad 0, mask 0, label -100). */
export function toyBatch(samples: readonly ToySample[]): MultimodalBatch {
  const rows = samples.map(sampleIds);
  const T = Math.max(...rows.map((r) => r.ids.length));
  const pad = (row: number[], value: number) => [...row, ...Array(T - row.length).fill(value)];
  return {
    inputIds: tf.tensor2d(
      rows.map((r) => pad(r.ids, PAD)),
      undefined,
      'int32',
    ),
    attentionMask: tf.tensor2d(
      rows.map((r) => pad(Array(r.ids.length).fill(1), 0)),
      undefined,
      'int32',
    ),
    labels: tf.tensor2d(
      rows.map((r) => pad(r.labels, -100)),
      undefined,
      'int32',
    ),
    media: { image: samples.map((s) => [sampleImage(s)]) },
  };
}

/** In-memory BatchSource: batches of `batchSize` samples in an order shuffled per epoch from (seed, epoch). */
export class ToyBatchSource implements BatchSource {
  private epoch = 0;
  private index = 0;
  readonly length: number;

  constructor(
    private readonly samples: readonly ToySample[],
    private readonly batchSize: number,
    private readonly seed = 0,
  ) {
    this.length = Math.ceil(samples.length / batchSize);
  }

  private order(): number[] {
    const order = this.samples.map((_, i) => i);
    const rng = new Rng(this.seed * 1000 + this.epoch);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.nextFloat() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }

  async next(): Promise<MultimodalBatch | null> {
    if (this.index >= this.length) {
      this.epoch++;
      this.index = 0;
      return null;
    }
    const picked = this.order()
      .slice(this.index * this.batchSize, (this.index + 1) * this.batchSize)
      .map((i) => this.samples[i]);
    this.index++;
    return toyBatch(picked);
  }

  state(): BatchSourceState {
    return { epoch: this.epoch, index: this.index, seed: this.seed };
  }

  restore(state: BatchSourceState): void {
    if (state.seed !== this.seed)
      throw new Error(`ToyBatchSource.restore: seed ${state.seed} ≠ ${this.seed}`);
    this.epoch = Number(state.epoch);
    this.index = Number(state.index);
  }
}

/** A two-stage LLaVA-like recipe (projector, then projector + LoRA) for the toy model, writing under `output`. */
export function toyRecipe(output: string, overrides: Record<string, unknown> = {}): Recipe {
  return parseRecipe(
    {
      model: { from: 'unused' },
      data: { train: 'in-memory', batchSize: 2 },
      stages: [
        {
          name: 'align',
          template: 'plain',
          train: ['modalities.image.adapter.*'],
          lr: 1e-2,
          steps: 3,
          warmupRatio: 0.34,
          schedule: 'cosine',
        },
        {
          name: 'instruct',
          train: ['modalities.image.adapter.*'],
          paramGroups: [{ patterns: ['modalities.image.adapter.*'], lr: 2e-3 }],
          lr: 2e-2,
          epochs: 1.5,
          warmupRatio: 0.2,
          weightDecay: 0.01,
          lora: { r: 2, alpha: 4, dropout: 0.1, targets: ['llm.model.layers.*_proj'] },
        },
      ],
      optimizer: { accumulate: 2, clip: 1.0 },
      checkpoint: { every: 2, keep: null },
      seed: 5,
      output,
      ...overrides,
    },
    { source: 'toy-recipe' },
  );
}

/** One stage fine-tuning projector and LLM on the toy captions (30 steps of 4): enough to halve the loss. */
export function learnRecipe(output: string, overrides: Record<string, unknown> = {}): Recipe {
  return parseRecipe({
    model: 'unused',
    data: { train: 'x', batchSize: 4 },
    stages: [
      {
        name: 'full',
        train: ['modalities.image.adapter.*', 'llm.*'],
        lr: 1e-2,
        steps: 30,
        warmupRatio: 0.1,
      },
    ],
    checkpoint: { every: 0 },
    output,
    ...overrides,
  });
}
