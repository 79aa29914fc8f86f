// Vision Transformer compatible with HF CLIPVisionModel and SiglipVisionModel: same maths, same parameter names
// (`vision_model.embeddings.*`, `vision_model.encoder.layers.{i}.*`, …), so a HF state dict loads by name.
import {
  type ComponentConfig,
  type EncodeOptions,
  type EncoderOutput,
  type FeatureLayout,
  Initializer,
  LayerNorm,
  type ModalityEncoder,
  Module,
  tf,
} from '@vistune/core';
import {
  parseVisionConfig,
  patchGrid,
  type VisionTransformerConfig,
  validateVisionConfig,
  visionConfigToHf,
} from './config.js';
import { VisionEmbeddings } from './embeddings.js';
import { EncoderLayer, ModuleList } from './layers.js';
import { AttentionPoolingHead } from './pooling-head.js';

/** What HF returns with `output_hidden_states=True`. */
export interface VisionTransformerOutput {
  /** layers + 1 entries [B, tokens, hidden]: 0 = embeddings (after pre_layrnorm for CLIP), i = output of layer i; never post-normed. */
  hiddenStates: tf.Tensor3D[];
  /** HF last_hidden_state: CLIP = the last layer output (the same tensor as hiddenStates[layers]); SigLIP = post_layernorm of it. */
  lastHiddenState: tf.Tensor3D;
  /** HF pooler_output [B, hidden]: CLIP = post_layernorm(CLS); SigLIP = attention-pooling head (absent without head). */
  pooled?: tf.Tensor2D;
}

export interface VisionTransformerOptions {
  /** Parameter init. Default: HF-style random init from `seed`. Use `new Initializer({ random: false })` before loading weights. */
  init?: Initializer;
  /** Seed of the default init (default 0). */
  seed?: number;
  /** SigLIP: build the attention-pooling head `head.*` (default config.useHead). LLaVA-style use never needs it. */
  withHead?: boolean;
}

export interface LoadHFWeightsOptions {
  /** Prefix before `vision_model.` in the checkpoint (`vision_tower.` in LLaVA); default: detected. */
  prefix?: string;
  /** File or folder named in errors. */
  source?: string;
}

export interface LoadHFWeightsResult {
  /** The prefix used (given or detected). */
  prefix: string;
  /** Parameters assigned. */
  loaded: number;
  /** Checkpoint tensors under the prefix that were deliberately skipped (position_ids buffer, an unbuilt head). */
  ignored: string[];
}

/** HF `encoder`: holds `layers`. */
class TransformerEncoder extends Module {
  readonly layers: ModuleList<EncoderLayer>;
  constructor(config: VisionTransformerConfig, init: Initializer) {
    super();
    const layers = Array.from({ length: config.numHiddenLayers }, () => new EncoderLayer(config, init));
    this.layers = this.module('layers', new ModuleList(layers));
  }
}

/** HF CLIPVisionTransformer / SiglipVisionTransformer (everything under `vision_model.`). */
class VisionTransformerBody extends Module {
  readonly embeddings: VisionEmbeddings;
  /** CLIP only (the name is HF's typo). */
  readonly pre_layrnorm: LayerNorm | undefined;
  readonly encoder: TransformerEncoder;
  readonly post_layernorm: LayerNorm;
  readonly head: AttentionPoolingHead | undefined;

  constructor(config: VisionTransformerConfig, init: Initializer, withHead: boolean) {
    super();
    const isClip = config.modelType === 'clip_vision_model';
    this.embeddings = this.module('embeddings', new VisionEmbeddings(config, init));
    this.pre_layrnorm = isClip
      ? this.module('pre_layrnorm', new LayerNorm(config.hiddenSize, config.layerNormEps))
      : undefined;
    this.encoder = this.module('encoder', new TransformerEncoder(config, init));
    this.post_layernorm = this.module(
      'post_layernorm',
      new LayerNorm(config.hiddenSize, config.layerNormEps),
    );
    this.head = withHead ? this.module('head', new AttentionPoolingHead(config, init)) : undefined;
  }
}

export class VisionTransformer extends Module implements ModalityEncoder<tf.Tensor4D> {
  readonly vision_model: VisionTransformerBody;
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Entries of hidden_states: layers + 1. */
  readonly numHiddenStates: number;
  readonly numPatches: number;
  readonly hasClassToken: boolean;
  readonly imageSize: number;
  readonly patchSize: number;

  constructor(
    readonly config: VisionTransformerConfig,
    opts: VisionTransformerOptions = {},
  ) {
    super();
    validateVisionConfig(config);
    const init = opts.init ?? new Initializer({ seed: opts.seed ?? 0, std: config.initializerRange });
    const withHead = opts.withHead ?? config.useHead;
    if (withHead && config.modelType !== 'siglip_vision_model') {
      throw new Error(
        'VisionTransformer: option withHead applies to siglip_vision_model only (CLIP has no pooling head)',
      );
    }
    this.vision_model = this.module('vision_model', new VisionTransformerBody(config, init, withHead));
    this.hiddenSize = config.hiddenSize;
    this.numLayers = config.numHiddenLayers;
    this.numHiddenStates = config.numHiddenLayers + 1;
    this.numPatches = patchGrid(config).count;
    this.hasClassToken = config.modelType === 'clip_vision_model';
    this.imageSize = config.imageSize;
    this.patchSize = config.patchSize;
  }

  /** Builds from a HF `vision_config` object (see parseVisionConfig). */
  /** The registry config (`encoder` kind) that recreates this tower's architecture, for saved compositions. */
  componentConfig(): ComponentConfig {
    const { model_type: modelType, vision_use_head: useHead, ...fields } = visionConfigToHf(this.config);
    return {
      type: modelType === 'siglip_vision_model' ? 'siglip_vision' : 'clip_vision',
      ...fields,
      ...(modelType === 'siglip_vision_model' ? { with_head: useHead } : {}),
    };
  }

  static fromHFConfig(
    raw: unknown,
    opts: VisionTransformerOptions & { source?: string } = {},
  ): VisionTransformer {
    return new VisionTransformer(parseVisionConfig(raw, opts.source), opts);
  }

  /** Tokens per image: CLS (CLIP) then the patch grid, row-major. */
  get layout(): FeatureLayout {
    const side = patchGrid(this.config).perSide;
    return {
      tokens: this.numPatches + (this.hasClassToken ? 1 : 0),
      prefixTokens: this.hasClassToken ? 1 : 0,
      grid: [side, side],
    };
  }

  /** Layout for one item [C, H, W]; throws when the item does not have the model's input size. */
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    const { numChannels: c, imageSize: s } = this.config;
    if (itemShape.length !== 3 || itemShape[0] !== c || itemShape[1] !== s || itemShape[2] !== s) {
      throw new Error(`VisionTransformer: an image item must be [${c}, ${s}, ${s}], got [${itemShape}]`);
    }
    return this.layout;
  }

  /** hidden_states index (negative from the end) → 0..layers. */
  resolveHiddenStateIndex(index: number): number {
    const resolved = index < 0 ? this.numHiddenStates + index : index;
    if (!Number.isInteger(index) || resolved < 0 || resolved > this.numLayers) {
      throw new Error(
        `VisionTransformer: hidden state index ${index} is out of range for ${this.numLayers} layers ` +
          `(use 0..${this.numLayers} or -${this.numHiddenStates}..-1; check vision_feature_layer)`,
      );
    }
    return resolved;
  }

  /** Embeddings (+ pre_layrnorm for CLIP): hidden_states[0]. */
  private embed(pixels: tf.Tensor4D): tf.Tensor3D {
    const x = this.vision_model.embeddings.forward(pixels);
    const pre = this.vision_model.pre_layrnorm;
    return pre ? (pre.forward(x) as tf.Tensor3D) : x;
  }

  /**
   * The requested hidden_states entries only (default [-1]); runs no layer past the deepest one asked for,
   * so LLaVA's layer -2 skips the last layer.
   */
  forward(pixels: tf.Tensor4D, opts: EncodeOptions = {}): EncoderOutput {
    const wanted = (opts.hiddenStates ?? [-1]).map((i) => this.resolveHiddenStateIndex(i));
    const deepest = Math.max(...wanted);
    const hiddenStates = tf.tidy(() => {
      const states: tf.Tensor3D[] = [this.embed(pixels)];
      const layers = this.vision_model.encoder.layers.items;
      for (let i = 0; i < deepest; i++) states.push(layers[i].forward(states[i]));
      return wanted.map((i) => states[i]);
    });
    return { hiddenStates, layout: this.layout };
  }

  /** Every hidden state, last_hidden_state and pooler_output, as HF with `output_hidden_states=True`. */
  forwardAll(pixels: tf.Tensor4D): VisionTransformerOutput {
    return tf.tidy(() => {
      const body = this.vision_model;
      const hiddenStates: tf.Tensor3D[] = [this.embed(pixels)];
      for (const layer of body.encoder.layers.items)
        hiddenStates.push(layer.forward(hiddenStates[hiddenStates.length - 1]));
      const last = hiddenStates[hiddenStates.length - 1];
      if (this.hasClassToken) {
        const cls = tf.squeeze(tf.slice(last, [0, 0, 0], [-1, 1, -1]), [1]);
        return {
          hiddenStates,
          lastHiddenState: last,
          pooled: body.post_layernorm.forward(cls) as tf.Tensor2D,
        };
      }
      const lastHiddenState = body.post_layernorm.forward(last) as tf.Tensor3D;
      return { hiddenStates, lastHiddenState, pooled: body.head?.forward(lastHiddenState) };
    });
  }

  /**
   * Loads `<prefix>vision_model.*` tensors of a HF checkpoint (CLIPVisionModel, SiglipVisionModel, CLIPModel,
   * or a LLaVA checkpoint with prefix `vision_tower.` / `model.vision_tower.`). Every parameter must be present
   * with its HF shape; unknown names under the prefix are errors; the position_ids buffer and a head that was
   * not built are skipped and reported in `ignored`.
   */
  loadHFWeights(
    weights: ReadonlyMap<string, tf.Tensor>,
    opts: LoadHFWeightsOptions = {},
  ): LoadHFWeightsResult {
    const source = opts.source ?? 'the checkpoint';
    const prefix = opts.prefix ?? detectVisionPrefix(weights.keys(), source);
    const own = new Map<string, tf.Tensor>();
    const ignored: string[] = [];
    const hasHead = this.vision_model.head !== undefined;
    for (const [name, tensor] of weights) {
      if (!name.startsWith(`${prefix}vision_model.`)) continue;
      const local = name.slice(prefix.length);
      const skip =
        local === 'vision_model.embeddings.position_ids' ||
        (!hasHead && local.startsWith('vision_model.head.'));
      if (skip) ignored.push(name);
      else own.set(local, tensor);
    }
    if (own.size === 0) {
      throw new Error(
        `No tensors named '${prefix}vision_model.*' in ${source}: pass the prefix its vision weights use`,
      );
    }
    this.loadStateDict(own, { strict: true, source: `${source} (prefix '${prefix}')` });
    return { prefix, loaded: own.size, ignored };
  }
}

/** The single prefix before `vision_model.` among the names ('' for CLIPVisionModel, `vision_tower.` for LLaVA). */
export function detectVisionPrefix(names: Iterable<string>, source = 'the checkpoint'): string {
  const prefixes = new Set<string>();
  for (const name of names) {
    const at = name.indexOf('vision_model.');
    if (at >= 0 && (at === 0 || name[at - 1] === '.')) prefixes.add(name.slice(0, at));
  }
  if (prefixes.size === 1) return [...prefixes][0];
  if (prefixes.size === 0)
    throw new Error(`No 'vision_model.*' tensors in ${source}: it holds no CLIP/SigLIP vision tower`);
  throw new Error(
    `${source} has vision towers under several prefixes (${[...prefixes].map((p) => `'${p}'`).join(', ')}): pass opts.prefix`,
  );
}
