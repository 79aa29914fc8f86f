// Q-Former connectors with HF's parameter names and maths (modeling_blip_2.py, modeling_instructblip.py):
// learnable query tokens run through BERT-style layers (post-LayerNorm residuals), self-attention among the
// queries (and, for InstructBLIP, the instruction's tokens), cross-attention to the image features every
// `crossAttentionFrequency` layers, a separate query feed-forward (`intermediate_query` / `output_query`), then
// `language_projection` into the LLM. A BLIP-2 state dict restricted to `query_tokens`, `qformer.*` and
// `language_projection.*` loads by name.
import {
  type Adapter,
  type AdapterContext,
  activation,
  Embedding,
  type FeatureLayout,
  Initializer,
  LayerNorm,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { BlivaQFormerConfig, InstructQFormerConfig, QFormerConfig } from './config.js';
import { ModuleList, multiHeadAttention } from './layers.js';

type AnyQFormerConfig = QFormerConfig | InstructQFormerConfig | BlivaQFormerConfig;

/** HF Blip2QFormerMultiHeadAttention: query/key/value Linears; keys and values read `encoderWidth` features. */
class QFormerMultiHeadAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(c: AnyQFormerConfig, encoderWidth: number, init: Initializer) {
    super();
    this.query = this.module('query', new Linear(c.hiddenSize, c.hiddenSize, { init }));
    this.key = this.module('key', new Linear(encoderWidth, c.hiddenSize, { init }));
    this.value = this.module('value', new Linear(encoderWidth, c.hiddenSize, { init }));
  }
}

/** dense → residual add → LayerNorm (HF Blip2QFormerSelfOutput and Blip2QFormerOutput). */
class DenseResidualNorm extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;

  constructor(inWidth: number, c: AnyQFormerConfig, init: Initializer) {
    super();
    this.dense = this.module('dense', new Linear(inWidth, c.hiddenSize, { init }));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }

  forward(x: tf.Tensor, residual: tf.Tensor): tf.Tensor3D {
    return this.LayerNorm.forward(tf.add(this.dense.forward(x), residual)) as tf.Tensor3D;
  }
}

/** HF Blip2QFormerAttention: multi-head attention + its output block. */
class QFormerAttention extends Module {
  readonly attention: QFormerMultiHeadAttention;
  readonly output: DenseResidualNorm;

  constructor(
    private readonly c: AnyQFormerConfig,
    encoderWidth: number,
    init: Initializer,
  ) {
    super();
    this.attention = this.module('attention', new QFormerMultiHeadAttention(c, encoderWidth, init));
    this.output = this.module('output', new DenseResidualNorm(c.hiddenSize, c, init));
  }

  /** x [B, T, hidden] attends to `context` (itself when absent); keyMask [B, S]. */
  forward(x: tf.Tensor3D, context?: tf.Tensor3D, keyMask?: tf.Tensor2D): tf.Tensor3D {
    const kv = context ?? x;
    const a = this.attention;
    const y = multiHeadAttention(
      a.query.forward(x),
      a.key.forward(kv),
      a.value.forward(kv),
      this.c.numAttentionHeads,
      keyMask,
    );
    return this.output.forward(y, x);
  }
}

/** HF Blip2QFormerIntermediate + Blip2QFormerOutput: dense → act → dense → residual → LayerNorm. */
class QFormerFeedForward {
  constructor(
    readonly intermediate: Linear,
    readonly output: DenseResidualNorm,
    private readonly act: (x: tf.Tensor) => tf.Tensor,
  ) {}

  forward(x: tf.Tensor3D): tf.Tensor3D {
    return this.output.forward(this.act(this.intermediate.forward(x)), x);
  }
}

/** `intermediate.dense` lives one level down in HF (Blip2QFormerIntermediate.dense). */
class Intermediate extends Module {
  readonly dense: Linear;
  constructor(c: AnyQFormerConfig, init: Initializer) {
    super();
    this.dense = this.module('dense', new Linear(c.hiddenSize, c.intermediateSize, { init }));
  }
}

/** HF Blip2QFormerLayer. `withText`: the text feed-forward (`intermediate`, `output`) exists (InstructBLIP). */
export class QFormerLayer extends Module {
  readonly attention: QFormerAttention;
  readonly crossattention: QFormerAttention | undefined;
  private readonly textFfn: QFormerFeedForward | undefined;
  private readonly queryFfn: QFormerFeedForward;

  constructor(c: AnyQFormerConfig, layerIndex: number, withText: boolean, init: Initializer) {
    super();
    const act = activation(c.hiddenAct);
    this.attention = this.module('attention', new QFormerAttention(c, c.hiddenSize, init));
    this.crossattention =
      layerIndex % c.crossAttentionFrequency === 0
        ? this.module('crossattention', new QFormerAttention(c, c.inDim, init))
        : undefined;
    if (withText) {
      const intermediate = this.module('intermediate', new Intermediate(c, init));
      const output = this.module('output', new DenseResidualNorm(c.intermediateSize, c, init));
      this.textFfn = new QFormerFeedForward(intermediate.dense, output, act);
    }
    const intermediate = this.module('intermediate_query', new Intermediate(c, init));
    const output = this.module('output_query', new DenseResidualNorm(c.intermediateSize, c, init));
    this.queryFfn = new QFormerFeedForward(intermediate.dense, output, act);
  }

  /** x [B, Q + L, hidden] (queries first); the first `queries` rows cross-attend to the image. */
  forward(x: tf.Tensor3D, queries: number, image: tf.Tensor3D, selfMask?: tf.Tensor2D): tf.Tensor3D {
    const attended = this.attention.forward(x, undefined, selfMask);
    const [B, T, H] = attended.shape;
    let q = T === queries ? attended : (tf.slice(attended, [0, 0, 0], [B, queries, H]) as tf.Tensor3D);
    if (this.crossattention) q = this.crossattention.forward(q, image);
    const queryOut = this.queryFfn.forward(q);
    if (T === queries) return queryOut;
    if (!this.textFfn)
      throw new Error('QFormerLayer: text tokens were given to a Q-Former without a text feed-forward');
    const text = tf.slice(attended, [0, queries, 0], [B, T - queries, H]) as tf.Tensor3D;
    return tf.concat([queryOut, this.textFfn.forward(text)], 1) as tf.Tensor3D;
  }
}

class QFormerEncoder extends Module {
  readonly layer: QFormerLayer[];
  constructor(c: AnyQFormerConfig, withText: boolean, init: Initializer) {
    super();
    const layers = Array.from(
      { length: c.numHiddenLayers },
      (_, i) => new QFormerLayer(c, i, withText, init),
    );
    this.layer = [...this.module('layer', new ModuleList(layers)).items];
  }
}

/** HF InstructBlipQFormerEmbeddings: word + absolute position embeddings of the instruction, then LayerNorm. */
class QFormerEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly layernorm: LayerNorm;

  constructor(c: InstructQFormerConfig | BlivaQFormerConfig, init: Initializer) {
    super();
    this.word_embeddings = this.module(
      'word_embeddings',
      new Embedding(c.vocabSize, c.hiddenSize, { init, paddingIdx: c.padTokenId }),
    );
    this.position_embeddings = this.module(
      'position_embeddings',
      new Embedding(c.maxPositionEmbeddings, c.hiddenSize, { init }),
    );
    this.layernorm = this.module('layernorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
}

/** The instruction as the Q-Former reads it: ids in its vocabulary and a [B, L] mask (1 = token). */
export interface QFormerInstruction {
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
  /** [B, L] int32 positions; default 0..L-1. */
  positionIds?: tf.Tensor2D;
}

/**
 * HF Blip2QFormerModel (no `embeddings`, a top-level `layernorm`) or InstructBlipQFormerModel (`embeddings`
 * with its own LayerNorm, text tokens join the self-attention).
 */
export class QFormerModel extends Module {
  readonly layernorm: LayerNorm | undefined;
  readonly embeddings: QFormerEmbeddings | undefined;
  readonly encoder: QFormerEncoder;

  constructor(c: AnyQFormerConfig, init: Initializer) {
    super();
    const withText = c.type !== 'qformer';
    if (withText) this.embeddings = this.module('embeddings', new QFormerEmbeddings(c, init));
    else this.layernorm = this.module('layernorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.encoder = this.module('encoder', new QFormerEncoder(c, withText, init));
  }

  /** queryEmbeds [B, Q, hidden], image [B, S, inDim] → last hidden state [B, Q (+ L), hidden]. */
  forward(queryEmbeds: tf.Tensor3D, image: tf.Tensor3D, instruction?: QFormerInstruction): tf.Tensor3D {
    const [B, Q] = queryEmbeds.shape;
    let x: tf.Tensor3D;
    let selfMask: tf.Tensor2D | undefined;
    if (this.embeddings) {
      const e = this.embeddings;
      if (instruction) {
        const L = instruction.ids.shape[1];
        const maxPositions = e.position_embeddings.numEmbeddings;
        if (L > maxPositions)
          throw new Error(
            `Q-Former: the instruction has ${L} tokens but maxPositionEmbeddings is ${maxPositions}: raise it or shorten the prompt`,
          );
        const positions =
          instruction.positionIds ??
          (tf.tile(tf.expandDims(tf.range(0, L, 1, 'int32'), 0), [B, 1]) as tf.Tensor2D);
        const text = tf.add(
          e.word_embeddings.forward(instruction.ids),
          e.position_embeddings.forward(positions),
        );
        x = tf.concat([queryEmbeds, text], 1) as tf.Tensor3D;
        selfMask = tf.concat([tf.ones([B, Q]), tf.cast(instruction.mask, 'float32')], 1) as tf.Tensor2D;
      } else x = queryEmbeds;
      x = e.layernorm.forward(x) as tf.Tensor3D;
    } else {
      if (instruction)
        throw new Error('Q-Former (qformer): it has no text embeddings; use instructblip_qformer');
      x = (this.layernorm as LayerNorm).forward(queryEmbeds) as tf.Tensor3D;
    }
    for (const layer of this.encoder.layer) x = layer.forward(x, Q, image, selfMask);
    return x;
  }
}

/** `qformer.encoder.layer.N.intermediate.*` / `output.*` of checkpoints whose Q-Former never reads text. */
const UNUSED_TEXT_FFN = /^qformer\.encoder\.layer\.\d+\.(intermediate|output)\./;

/**
 * BLIP-2 / MiniGPT-4 connector (`qformer`): features [N, tokens, inDim] → numQueryTokens slots per item.
 * Parameters: `query_tokens` [1, Q, hidden], `qformer.*`, `language_projection.*` (HF names).
 */
export class QFormerAdapter extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly query_tokens: tf.Variable<tf.Rank.R3>;
  readonly qformer: QFormerModel;
  readonly language_projection: Linear;

  constructor(
    readonly config: AnyQFormerConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    const c = config;
    if (c.hiddenSize % c.numAttentionHeads !== 0)
      throw new Error(
        `${c.type}: hiddenSize ${c.hiddenSize} is not divisible by numAttentionHeads ${c.numAttentionHeads}: pick a head count dividing it`,
      );
    this.inDim = c.inDim;
    this.outDim = c.outDim;
    // HF initialises query_tokens with initializer_range like every other weight.
    this.query_tokens = this.param(
      'query_tokens',
      init.normal([1, c.numQueryTokens, c.hiddenSize]) as tf.Tensor3D,
    );
    this.qformer = this.module('qformer', new QFormerModel(c, init));
    this.language_projection = this.module(
      'language_projection',
      new Linear(c.hiddenSize, c.outDim, { init, bias: c.bias }),
    );
  }

  numSlots(_layout: FeatureLayout): number {
    return this.config.numQueryTokens;
  }

  /** HF `query_output`: image [N, S, inDim] (+ instruction) → the queries' last hidden state [N, Q, hidden]. */
  queryOutput(image: tf.Tensor3D, instruction?: QFormerInstruction): tf.Tensor3D {
    return tf.tidy(() => {
      const N = image.shape[0];
      const Q = this.config.numQueryTokens;
      const queries = tf.tile(this.query_tokens, [N, 1, 1]) as tf.Tensor3D;
      const out = this.qformer.forward(queries, image, instruction);
      return out.shape[1] === Q ? out : (tf.slice(out, [0, 0, 0], [N, Q, -1]) as tf.Tensor3D);
    });
  }

  forward(features: tf.Tensor3D, _ctx?: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => this.language_projection.forward(this.queryOutput(features)) as tf.Tensor3D);
  }

  /** Loads a BLIP-2-style state dict; the unused text feed-forward of HF checkpoints is skipped. */
  override loadStateDict(
    weights: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>,
    opts: { strict?: boolean; source?: string } = {},
  ): { missing: string[]; unexpected: string[] } {
    const entries = weights instanceof Map ? [...weights] : Object.entries(weights);
    const own = this.stateDict();
    const kept = entries.filter(([name]) => own.has(name) || !UNUSED_TEXT_FFN.test(name));
    return super.loadStateDict(new Map(kept), opts);
  }
}

/**
 * The instruction the composition gives an instruction-aware Q-Former: the sample's token ids where the text
 * mask is 1, with positions counted over those tokens only (HF gives the instruction alone, from position 0).
 */
export function instructionFromContext(
  ctx: AdapterContext,
  who: string,
  vocabSize: number,
): QFormerInstruction {
  const text = ctx.text;
  if (!text?.ids)
    throw new Error(
      `${who}: no instruction ids were passed (ctx.text.ids); it runs inside MultimodalModel, which passes them to adapters with usesText`,
    );
  const ids = text.ids;
  const largest = tf.tidy(() => tf.max(tf.mul(ids, tf.cast(text.mask, 'int32'))).dataSync()[0]);
  if (largest >= vocabSize)
    throw new Error(
      `${who}: instruction token id ${largest} is outside the Q-Former vocabulary (vocabSize ${vocabSize}): set vocabSize to at least the LLM's vocabulary size`,
    );
  return tf.tidy(() => {
    const mask = text.mask;
    const keep = tf.cast(mask, 'int32');
    // Masked ids may be placeholders (negative) or beyond the vocabulary: read row 0 there, never attended.
    const safeIds = tf.mul(ids, keep) as tf.Tensor2D;
    const one = tf.scalar(1, 'int32');
    const positionIds = tf.relu(tf.sub(tf.cumsum(keep, 1), one)) as tf.Tensor2D;
    return { ids: safeIds, mask, positionIds };
  });
}

/**
 * InstructBLIP connector (`instructblip_qformer`): the instruction's tokens join the queries' self-attention
 * (HF InstructBlipQFormerModel with `qformer_input_ids`); slots are the projected query outputs.
 */
export class InstructQFormerAdapter extends QFormerAdapter {
  readonly usesText = true;
  declare readonly config: InstructQFormerConfig | BlivaQFormerConfig;

  override forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    return tf.tidy(() => {
      const instruction = instructionFromContext(ctx, this.config.type, this.config.vocabSize);
      return this.language_projection.forward(this.queryOutput(features, instruction)) as tf.Tensor3D;
    });
  }
}

/**
 * BLIVA connector (`bliva_qformer`): the instruction-aware query outputs followed by every patch feature
 * projected into the LLM (`vision_projection`), numQueryTokens + tokens slots per item.
 */
export class BlivaQFormerAdapter extends InstructQFormerAdapter {
  readonly vision_projection: Linear;
  declare readonly config: BlivaQFormerConfig;

  constructor(
    config: BlivaQFormerConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super(config, init);
    this.vision_projection = this.module(
      'vision_projection',
      new Linear(config.inDim, config.outDim, { init, bias: config.bias }),
    );
  }

  override numSlots(layout: FeatureLayout): number {
    return this.config.numQueryTokens + layout.tokens;
  }

  override forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    return tf.tidy(
      () =>
        tf.concat([super.forward(features, ctx), this.vision_projection.forward(features)], 1) as tf.Tensor3D,
    );
  }
}

/**
 * The registry config of a Q-Former connector from an HF Blip2Config / InstructBlipConfig object
 * (`num_query_tokens`, `qformer_config.*`, `text_config.hidden_size`); errors name the missing field.
 */
export function qformerConfigFromHF(
  json: Record<string, unknown>,
  source = 'config.json',
): Record<string, unknown> {
  const q = json.qformer_config as Record<string, unknown> | undefined;
  const text = json.text_config as Record<string, unknown> | undefined;
  if (!q || typeof q !== 'object')
    throw new Error(`${source}: qformer_config is missing (expected a BLIP-2 / InstructBLIP config)`);
  if (typeof text?.hidden_size !== 'number') throw new Error(`${source}: text_config.hidden_size is missing`);
  const instruct = json.model_type === 'instructblip' || q.model_type === 'instructblip_qformer';
  const pick = (hf: string) =>
    q[hf] === undefined ? {} : { [hf.replace(/_(\w)/g, (_, ch: string) => ch.toUpperCase())]: q[hf] };
  return {
    type: instruct ? 'instructblip_qformer' : 'qformer',
    inDim: q.encoder_hidden_size ?? (json.vision_config as { hidden_size?: number } | undefined)?.hidden_size,
    outDim: text.hidden_size,
    ...(json.num_query_tokens === undefined ? {} : { numQueryTokens: json.num_query_tokens }),
    ...pick('hidden_size'),
    ...pick('num_hidden_layers'),
    ...pick('num_attention_heads'),
    ...pick('intermediate_size'),
    ...pick('cross_attention_frequency'),
    ...pick('hidden_act'),
    ...pick('layer_norm_eps'),
    ...(q.initializer_range === undefined ? {} : { std: q.initializer_range }),
    ...(instruct
      ? { ...pick('vocab_size'), ...pick('max_position_embeddings'), ...pick('pad_token_id') }
      : {}),
  };
}
