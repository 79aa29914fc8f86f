// LISA's embedding-as-mask head (dvlab-research/LISA model/LISA.py): the LLM's last hidden state read at each
// [SEG] → text_hidden_fcs (Linear → ReLU → Linear to the decoder width) → one sparse prompt of a SAM-style
// mask decoder over the image's vision features → one mask per [SEG], in order.
//
// Where it reads: LISA builds `seg_token_mask = input_ids[:, 1:] == seg_idx` (then shifts by the image
// expansion), i.e. the hidden state at the position BEFORE [SEG], the state that predicts [SEG]. That is
// readOffset −1 (the default); 0 reads [SEG]'s own state.
//
// Loss (LISA defaults): bceWeight · BCE + diceWeight · DICE, each averaged per mask over its pixels, then over
// the masks, computed at the ORIGINAL image resolution (LISA upsamples the logits with SAM's postprocess_masks
// before the loss). The model adds lossWeight × this to the text cross-entropy.
import {
  type AnswerAnnotation,
  type AnswerContext,
  type Head,
  type HeadInput,
  type HeadOutput,
  type HeadReadOffset,
  Initializer,
  Linear,
  type ModalityEncoder,
  Module,
  tf,
} from '@vistune/core';
import { annotateMasks } from './annotate.js';
import { type LisaSegHeadConfig, lisaSegHeadConfig } from './config.js';
import { MaskDecoder, type MaskDecoderConfig } from './decoder.js';
import { diceLoss, sigmoidBceLoss } from './loss.js';
import { type FrameTransform, toOriginalFrame } from './resample.js';

/** The truth of one [SEG]: a binary mask in the ORIGINAL image frame. */
export interface SegMaskTarget {
  /** Row-major, height × width, 1 = object (any non-zero value counts). */
  mask: ArrayLike<number>;
  width: number;
  height: number;
  /** Original → processed frame (the processor's pad/resize/crop); default: a plain resize. */
  transform?: FrameTransform;
}

export type SegHeadOutput = {
  /** [K, H, W] mask logits over the processed image, one per [SEG] in order (> 0 = object). */
  logits: tf.Tensor3D;
  /** Unweighted loss terms, present when targets were given. */
  bce?: tf.Scalar;
  dice?: tf.Scalar;
};

export interface LisaSegHeadOptions {
  /** Head name: the key of batch.headTargets and of the parameters (`heads.<name>.*`). */
  name: string;
  triggerTokenId: number;
  readOffset: HeadReadOffset;
  llmHiddenSize: number;
  /** Media key of the images the decoder reads (the model's image modality). */
  modality: string;
  /** Which hidden state of the vision encoder the decoder reads (HF hidden_states index; -1 = last). */
  visionLayer: number;
  decoder: MaskDecoderConfig;
  bceWeight: number;
  diceWeight: number;
  diceScale: number;
  diceEps: number;
  /** Weight of the head's loss in the model's total (LISA's mask terms sit next to ce weight 1). */
  lossWeight: number;
  seed: number;
  /** `fan_in`: Linear weights ~ N(0, 1/fan_in) (PyTorch's default scale up to a constant, as SAM's decoder
   * starts); `fixed`: N(0, std²) everywhere (HF initializer_range). */
  init: 'fan_in' | 'fixed';
  std: number;
}

/**
 * Linear weights ~ N(0, 1/fan_in) (the last axis of [out, in] is fan_in). HF's fixed 0.02 is calibrated for
 * LLM widths in the thousands: at a decoder width of 32 it scales the signal by ~0.1 per layer, and the
 * prompt and image paths vanish before training starts.
 */
export class FanInInitializer extends Initializer {
  override normal(shape: number[], std?: number): tf.Tensor {
    return super.normal(shape, std ?? 1 / Math.sqrt(shape[shape.length - 1] as number));
  }
}

export class LisaSegHead extends Module implements Head<SegMaskTarget, SegHeadOutput> {
  readonly name: string;
  readonly triggerTokenId: number;
  readonly readOffset: HeadReadOffset;
  readonly lossWeight: number;
  readonly textHiddenFcs: readonly Linear[];
  readonly maskDecoder: MaskDecoder;
  private vision: ModalityEncoder<unknown> | null = null;
  private ownsVision = false;

  constructor(readonly options: LisaSegHeadOptions) {
    super();
    this.name = options.name;
    this.triggerTokenId = options.triggerTokenId;
    this.readOffset = options.readOffset;
    this.lossWeight = options.lossWeight;
    const init =
      options.init === 'fan_in'
        ? new FanInInitializer({ seed: options.seed })
        : new Initializer({ seed: options.seed, std: options.std });
    const H = options.llmHiddenSize;
    // LISA: ModuleList([Sequential(Linear(H, H), ReLU, Linear(H, out_dim), Dropout(0))]) → `text_hidden_fcs.0.{0,2}`.
    const first = new Linear(H, H, { init });
    const second = new Linear(H, options.decoder.dim, { init });
    this.textHiddenFcs = [first, second];
    this.module(
      'text_hidden_fcs',
      new NamedChildren([
        [
          '0',
          new NamedChildren([
            ['0', first],
            ['2', second],
          ]),
        ],
      ]),
    );
    const embeddingStd = options.init === 'fan_in' ? 1 : options.std;
    this.maskDecoder = this.module('mask_decoder', new MaskDecoder(options.decoder, init, embeddingStd));
  }

  /**
   * The vision encoder whose patch grid the decoder reads: the model's image encoder (shared: its parameters
   * stay the modality's), or a separate one (`own`: registered under `heads.<name>.visual_model`, as LISA's SAM).
   */
  bindVision(encoder: ModalityEncoder<unknown>, opts: { own?: boolean } = {}): void {
    if (this.vision) throw new Error(`${this.name}: a vision encoder is already bound`);
    if (encoder.hiddenSize !== this.options.decoder.visionDim)
      throw new Error(
        `${this.name}: the encoder's hidden size is ${encoder.hiddenSize} but decoder.visionDim is ${this.options.decoder.visionDim}: set vision_hidden_size to ${encoder.hiddenSize}`,
      );
    if (opts.own) this.module('visual_model', encoder);
    this.ownsVision = opts.own ?? false;
    this.vision = encoder;
  }

  /** After generation: one mask per generated [SEG] (LISA's second pass), as RLE in --json and drawn by --overlay. */
  annotate(ctx: AnswerContext): Promise<AnswerAnnotation | undefined> {
    return annotateMasks(this, ctx);
  }

  /** Loaders' and addHead's hook: binds the encoder of the head's modality (shared). */
  bindModalities(modalities: ReadonlyMap<string, { readonly encoder: ModalityEncoder<unknown> }>): void {
    const spec = modalities.get(this.options.modality);
    if (!spec)
      throw new Error(
        `${this.name}: the model has no "${this.options.modality}" modality (it has ${[...modalities.keys()].join(', ') || 'none'}): fix the head's modality in config.json vistune_heads`,
      );
    this.bindVision(spec.encoder);
  }

  /** The registry config that recreates this head (saved in config.json `vistune_heads`). */
  headConfig(): LisaSegHeadConfig {
    if (this.ownsVision)
      throw new Error(
        `${this.name}: a head with its own vision encoder (bindVision own: true) cannot be saved with the model: bind the model's image encoder`,
      );
    return lisaSegHeadConfig(this.options);
  }

  /**
   * Data-dependent init of text_hidden_fcs.0.0 (Salimans & Kingma 2016): rescales its rows and sets its bias
   * so that its pre-activations over `hidden` (trigger states of a few batches) have zero mean and unit
   * variance per unit. A randomly initialised LLM's trigger states share one large common component and
   * differ by a few percent; without this the decoder first learns to ignore the prompt.
   */
  calibrateProjection(hidden: tf.Tensor2D): void {
    const [first] = this.textHiddenFcs as [Linear];
    tf.tidy(() => {
      const pre = first.forward(hidden);
      const { mean, variance } = tf.moments(pre, 0);
      const scale = tf.rsqrt(tf.maximum(variance, 1e-12)); // a constant unit stays 0 after centring
      first.weight.assign(tf.mul(first.weight, tf.reshape(scale, [-1, 1])));
      const bias = first.bias ?? tf.zeros([first.outFeatures]);
      first.bias?.assign(tf.mul(tf.sub(bias, mean), scale));
    });
  }

  /** text_hidden_fcs: [K, llmHidden] → [K, decoder dim]. */
  project(hidden: tf.Tensor2D): tf.Tensor2D {
    const [first, second] = this.textHiddenFcs as [Linear, Linear];
    return second.forward(tf.relu(first.forward(hidden))) as tf.Tensor2D;
  }

  forward(input: HeadInput<SegMaskTarget>): HeadOutput<SegHeadOutput> {
    const encoder = this.vision;
    if (!encoder)
      throw new Error(
        `${this.name}: no vision encoder bound: add the head to a model (model.addHead binds it) or call bindVision before forward`,
      );
    const items = this.imagesOf(input);
    return tf.tidy(() => {
      // Each image is encoded once, then its rows are gathered for every [SEG] of its sample.
      const unique = [...new Set(items)];
      const pixelBatch = tf.stack(unique) as tf.Tensor4D; // [U, 3, H, W]
      const [, , H, W] = pixelBatch.shape;
      const out = encoder.forward(pixelBatch, { hiddenStates: [this.options.visionLayer] });
      const { layout } = out;
      const states = out.hiddenStates[0] as tf.Tensor3D;
      const grid = layout.grid;
      if (!grid) throw new Error(`${this.name}: the vision encoder reports no patch grid (layout.grid)`);
      const body = tf.slice(states, [0, layout.prefixTokens, 0], [-1, -1, -1]) as tf.Tensor3D;
      const rows = tf.tensor1d(
        items.map((item) => unique.indexOf(item)),
        'int32',
      );
      const pixels = this.options.decoder.pixelSkip
        ? (tf.gather(tf.transpose(pixelBatch, [0, 2, 3, 1]), rows) as tf.Tensor4D)
        : undefined;
      const logits = this.maskDecoder.forward({
        features: tf.gather(body, rows) as tf.Tensor3D,
        grid,
        prompts: this.project(input.hidden),
        outputSize: [H, W],
        pixels,
      });
      if (!input.targets) return { output: { logits } };
      const { bce, dice } = this.maskLosses(logits, input.targets);
      const loss = tf.add(
        tf.mul(bce, this.options.bceWeight),
        tf.mul(dice, this.options.diceWeight),
      ) as tf.Scalar;
      return { output: { logits, bce, dice }, loss };
    });
  }

  /** BCE and DICE of each mask at its original resolution, averaged over the masks. */
  maskLosses(logits: tf.Tensor3D, targets: readonly SegMaskTarget[]): { bce: tf.Scalar; dice: tf.Scalar } {
    const [K, H, W] = logits.shape;
    if (targets.length !== K)
      throw new Error(
        `${this.name}: ${targets.length} mask targets for ${K} [SEG] tokens: give one per [SEG]`,
      );
    return tf.tidy(() => {
      const bces: tf.Scalar[] = [];
      const dices: tf.Scalar[] = [];
      targets.forEach((t, k) => {
        if (t.mask.length !== t.width * t.height)
          throw new Error(
            `${this.name}: target ${k} has ${t.mask.length} mask values for ${t.width}×${t.height}: give one per pixel, row-major`,
          );
        const original = toOriginalFrame(tf.slice(logits, [k, 0, 0], [1, H, W]) as tf.Tensor3D, [H, W], t);
        const truth = tf.tensor3d(
          Float32Array.from(t.mask, (v) => (v ? 1 : 0)),
          [1, t.height, t.width],
        );
        bces.push(sigmoidBceLoss(original, truth));
        dices.push(diceLoss(original, truth, { scale: this.options.diceScale, eps: this.options.diceEps }));
      });
      return { bce: tf.div(tf.addN(bces), K) as tf.Scalar, dice: tf.div(tf.addN(dices), K) as tf.Scalar };
    });
  }

  /** The image each [SEG] row belongs to: its sample's first item of the image modality. */
  private imagesOf(input: HeadInput<SegMaskTarget>): tf.Tensor[] {
    const perSample = input.media?.get(this.options.modality);
    if (!perSample)
      throw new Error(
        `${this.name}: the batch has no media "${this.options.modality}": the mask decoder needs the image of every sample with [SEG]`,
      );
    return Array.from(input.sample, (b) => {
      const item = perSample[b]?.[0];
      if (!item)
        throw new Error(`${this.name}: sample ${b} has [SEG] but no "${this.options.modality}" item`);
      return item;
    });
  }
}

/** A module that only groups children under given names (LISA's Sequential indices 0 and 2). */
class NamedChildren extends Module {
  constructor(children: readonly (readonly [string, Module])[]) {
    super();
    for (const [name, child] of children) this.module(name, child);
  }
}
