// A light SAM-style mask decoder (segment_anything/modeling/mask_decoder.py with multimask_output=False) for
// LISA's embedding-as-mask: tokens [mask token; the [SEG] prompt] and the image positions run through a
// two-way transformer; the image side is upscaled ×2 per step (SAM's ConvTranspose2d(k=2, s=2) written as a
// per-pixel Linear to 2·2·C and a pixel shuffle), and a hypernetwork MLP turns the mask token into the
// weights of a per-pixel dot product, giving one logit map per prompt.
// Departures from SAM, for tiny models trained from scratch: fixed sinusoidal positional encodings instead
// of random Fourier features, no IoU head, and an optional pixel skip (a per-pixel MLP of the processed RGB
// added to the upscaled features at full resolution) because a ViT patch grid is coarse at 8–16 px.
import { gelu, Initializer, LayerNorm, Linear, Module, tf } from '@vistune/core';
import { ModuleList } from '@vistune/encoders';
import { resizeBilinear } from './resample.js';
import { TwoWayTransformer } from './two-way.js';

export interface MaskDecoderConfig {
  /** Width of the transformer, the prompt and the projected image features (SAM: 256). */
  dim: number;
  heads: number;
  /** Two-way blocks (SAM: 2). */
  depth: number;
  mlpDim: number;
  /** Cross-attention width is dim / this (SAM: 2). */
  crossAttentionDownsample: number;
  /** Channels after each ×2 upscaling step (SAM: [dim/4, dim/8]). */
  upscaleChannels: readonly number[];
  /** Width of the vision features the decoder reads. */
  visionDim: number;
  /** Add a per-pixel MLP of the processed image at full resolution (see the file comment). */
  pixelSkip: boolean;
}

/** [rows·cols, dim] fixed 2-D sinusoids of the cell centres: sin/cos of x and of y at dim/4 frequencies. */
export function gridPositionalEncoding(rows: number, cols: number, dim: number): tf.Tensor2D {
  if (dim % 4 !== 0) throw new Error(`gridPositionalEncoding: dim ${dim} must be a multiple of 4`);
  const bands = dim / 4;
  const values = new Float32Array(rows * cols * dim);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // Centres in [-1, 1] (SAM normalises the same way before its Fourier features).
      const x = (2 * (c + 0.5)) / cols - 1;
      const y = (2 * (r + 0.5)) / rows - 1;
      const row = (r * cols + c) * dim;
      for (let k = 0; k < bands; k++) {
        const w = Math.PI * (k + 1);
        values[row + k] = Math.sin(w * x);
        values[row + bands + k] = Math.cos(w * x);
        values[row + 2 * bands + k] = Math.sin(w * y);
        values[row + 3 * bands + k] = Math.cos(w * y);
      }
    }
  }
  return tf.tensor2d(values, [rows * cols, dim]);
}

/** x [K, h, w, 4C] → [K, 2h, 2w, C]: channel (dy·2 + dx)·C + c goes to sub-pixel (dy, dx). */
export function pixelUnshuffle2x(x: tf.Tensor4D): tf.Tensor4D {
  const [K, h, w, c4] = x.shape;
  const C = c4 / 4;
  return tf.tidy(
    () =>
      tf.reshape(tf.transpose(tf.reshape(x, [K * h, w, 2, 2 * C]), [0, 2, 1, 3]), [
        K,
        2 * h,
        2 * w,
        C,
      ]) as tf.Tensor4D,
  );
}

/** SAM's `MLP` (Linear → ReLU → … → Linear). */
class HyperMlp extends Module {
  readonly layers: readonly Linear[];
  constructor(dims: readonly number[], init: Initializer) {
    super();
    const linears = dims.slice(1).map((out, i) => new Linear(dims[i] as number, out, { init }));
    this.layers = this.module('layers', new ModuleList(linears)).items;
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.layers.reduce((h, layer, i) => {
      const y = layer.forward(h);
      return i < this.layers.length - 1 ? tf.relu(y) : y;
    }, x);
  }
}

export interface DecodeInput {
  /** [K, rows·cols, visionDim] vision features of the image each prompt belongs to (row-major grid). */
  features: tf.Tensor3D;
  grid: readonly [number, number];
  /** [K, dim] one prompt embedding per mask (the projected [SEG] state). */
  prompts: tf.Tensor2D;
  /** Output size [H, W]: the processed image the encoder saw. */
  outputSize: readonly [number, number];
  /** [K, H, W, 3] processed pixels (channels last); required with pixelSkip. */
  pixels?: tf.Tensor4D;
}

export class MaskDecoder extends Module {
  readonly imageProj: Linear;
  readonly noMaskEmbed: tf.Variable;
  readonly maskToken: tf.Variable;
  readonly transformer: TwoWayTransformer;
  readonly upscale: readonly Linear[];
  readonly upscaleNorm: LayerNorm;
  readonly hypernetwork: HyperMlp;
  readonly pixelProj: readonly Linear[];

  /** `embeddingStd`: std of the two embedding rows (SAM's nn.Embedding: 1). */
  constructor(
    readonly config: MaskDecoderConfig,
    init: Initializer = new Initializer(),
    embeddingStd = 1,
  ) {
    super();
    const { dim, upscaleChannels } = config;
    if (upscaleChannels.length === 0)
      throw new Error('MaskDecoder: upscaleChannels needs at least one ×2 step (SAM: [dim/4, dim/8])');
    this.imageProj = this.module('image_proj', new Linear(config.visionDim, dim, { init }));
    // SAM's prompt encoder `no_mask_embed` (the dense prompt when no mask is given) and `mask_tokens`.
    this.noMaskEmbed = this.param('no_mask_embed.weight', init.normal([1, dim], embeddingStd));
    this.maskToken = this.param('mask_tokens.weight', init.normal([1, dim], embeddingStd));
    this.transformer = this.module('transformer', new TwoWayTransformer(config, init));
    const widths = [dim, ...upscaleChannels];
    const ups = upscaleChannels.map((c, i) => new Linear(widths[i] as number, 4 * c, { init }));
    this.upscale = this.module('output_upscaling', new ModuleList(ups)).items;
    // SAM normalises after the first step only (LayerNorm2d), GELU after every step.
    this.upscaleNorm = this.module(
      'output_upscaling_norm',
      new LayerNorm(upscaleChannels[0] as number, 1e-6),
    );
    const channels = upscaleChannels[upscaleChannels.length - 1] as number;
    this.hypernetwork = this.module(
      'output_hypernetworks_mlps.0',
      new HyperMlp([dim, dim, dim, channels], init),
    );
    this.pixelProj = config.pixelSkip
      ? this.module(
          'pixel_proj',
          new ModuleList([new Linear(3, channels, { init }), new Linear(channels, channels, { init })]),
        ).items
      : [];
  }

  /** One logit map [K, H, W] per prompt, over the processed image. */
  forward(input: DecodeInput): tf.Tensor3D {
    const { features, grid, prompts, outputSize } = input;
    const [K, S] = features.shape;
    const [rows, cols] = grid;
    const [H, W] = outputSize;
    if (rows * cols !== S)
      throw new Error(`MaskDecoder: grid ${rows}×${cols} does not hold the ${S} feature positions given`);
    if (this.config.pixelSkip && !input.pixels)
      throw new Error('MaskDecoder: pixelSkip is on but no pixels were given');
    const D = this.config.dim;
    return tf.tidy(() => {
      // Image side: projected features + the dense "no mask" prompt; keys get the positional encoding.
      const image = tf.add(this.imageProj.forward(features), this.noMaskEmbed) as tf.Tensor3D;
      const pe = tf.broadcastTo(gridPositionalEncoding(rows, cols, D), [K, S, D]) as tf.Tensor3D;
      const tokens = tf.concat(
        [tf.broadcastTo(tf.reshape(this.maskToken, [1, 1, D]), [K, 1, D]), tf.reshape(prompts, [K, 1, D])],
        1,
      ) as tf.Tensor3D;
      const [outTokens, outImage] = this.transformer.forward(image, pe, tokens);
      const maskTokenOut = tf.reshape(tf.slice(outTokens, [0, 0, 0], [K, 1, D]), [K, D]);
      const hyper = this.hypernetwork.forward(maskTokenOut); // [K, C]
      let up = tf.reshape(outImage, [K, rows, cols, D]) as tf.Tensor4D;
      this.upscale.forEach((linear, i) => {
        up = pixelUnshuffle2x(linear.forward(up) as tf.Tensor4D);
        if (i === 0) up = this.upscaleNorm.forward(up) as tf.Tensor4D;
        up = gelu(up) as tf.Tensor4D;
      });
      const C = up.shape[3];
      const dot = (maps: tf.Tensor4D) =>
        tf.sum(tf.mul(maps, tf.reshape(hyper, [K, 1, 1, C])), 3) as tf.Tensor3D;
      if (!this.config.pixelSkip) {
        const low = dot(up);
        return tf.reshape(resizeBilinear(tf.expandDims(low, 3) as tf.Tensor4D, H, W), [K, H, W]);
      }
      const [first, second] = this.pixelProj as [Linear, Linear];
      const pixelFeatures = second.forward(gelu(first.forward(input.pixels as tf.Tensor4D)));
      return dot(tf.add(resizeBilinear(up, H, W), pixelFeatures) as tf.Tensor4D);
    });
  }
}
