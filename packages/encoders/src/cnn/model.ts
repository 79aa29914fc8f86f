// A small convolutional image tower (`cnn_vision`): strided 3×3 convolutions, then each patch_size × patch_size
// cell of the image becomes one token (its feature-map block, flattened and projected, then layer-normed).
// Parameter names follow the HF `vision_model.*` style so a tower saves and loads as a model folder.
import { join } from 'node:path';
import {
  type ComponentConfig,
  type EncodeOptions,
  type EncoderOutput,
  type FeatureLayout,
  gelu,
  Initializer,
  LayerNorm,
  Linear,
  loadSafetensorsDir,
  type ModalityEncoder,
  Module,
  permute,
  readJsonFile,
  tf,
} from '@vistune/core';
import { CNN_VISION_MODEL_TYPE, type CnnVisionConfig, parseCnnVisionConfig } from './config.js';
import { type ConvLayout, im2col } from './im2col.js';

const KERNEL = 3;

/** One stage: `conv.weight` [out, in, 3, 3] (PyTorch Conv2d layout) and `conv.bias`, stride 2, GELU. */
class ConvStage extends Module {
  readonly weight: tf.Variable<tf.Rank.R4>;
  readonly bias: tf.Variable<tf.Rank.R1>;
  constructor(inChannels: number, outChannels: number, init: Initializer) {
    super();
    // He-style scale: GELU stacks keep their activations' size.
    const std = Math.sqrt(2 / (inChannels * KERNEL * KERNEL));
    this.weight = this.param(
      'conv.weight',
      init.normal([outChannels, inChannels, KERNEL, KERNEL], std) as tf.Tensor4D,
    );
    this.bias = this.param('conv.bias', init.zeros([outChannels]) as tf.Tensor1D);
  }

  /** x [N, C, H, W] or [N, H, W, C] (H, W even) → [N, H/2, W/2, out]: as PyTorch Conv2d(3, stride 2, padding 1). */
  forward(x: tf.Tensor4D, layout: ConvLayout): tf.Tensor4D {
    const [n, a, b, d] = x.shape;
    const [c, h, w] = layout === 'NCHW' ? [a, b, d] : [d, a, b];
    const out = this.weight.shape[0];
    // [out, in, ky, kx] → rows in (ky, kx, in) order, as im2col's columns
    const filter = tf.reshape(permute(this.weight, [2, 3, 1, 0]), [KERNEL * KERNEL * c, out]);
    const y = tf.add(tf.matMul(im2col(x, layout), filter), this.bias);
    return tf.reshape(gelu(y), [n, h / 2, w / 2, out]) as tf.Tensor4D;
  }
}

class CnnBody extends Module {
  readonly stages: ConvStage[];
  readonly projection: Linear;
  readonly post_layernorm: LayerNorm;
  constructor(config: CnnVisionConfig, init: Initializer) {
    super();
    const channels = [config.num_channels, ...config.hidden_sizes];
    this.stages = config.hidden_sizes.map((out, i) =>
      this.module(`stages.${i}`, new ConvStage(channels[i] as number, out, init)),
    );
    const block = config.patch_size / 2 ** config.hidden_sizes.length;
    const last = config.hidden_sizes.at(-1) as number;
    this.projection = this.module(
      'projection',
      new Linear(block * block * last, config.hidden_size, { init }),
    );
    this.post_layernorm = this.module(
      'post_layernorm',
      new LayerNorm(config.hidden_size, config.layer_norm_eps),
    );
  }
}

export class CnnVisionEncoder extends Module implements ModalityEncoder<tf.Tensor4D> {
  readonly vision_model: CnnBody;
  readonly hiddenSize: number;
  /** One hidden state: the tokens (stage outputs differ in width, so they are not exposed). */
  readonly numHiddenStates = 1;

  constructor(
    readonly config: CnnVisionConfig,
    opts: { seed?: number; init?: Initializer } = {},
  ) {
    super();
    const init = opts.init ?? new Initializer({ seed: opts.seed ?? 0, std: config.initializer_range });
    this.vision_model = this.module('vision_model', new CnnBody(config, init));
    this.hiddenSize = config.hidden_size;
  }

  /** The registry config that recreates this architecture (saved with a composition). */
  componentConfig(): ComponentConfig {
    const { model_type: _type, ...fields } = this.config;
    return { type: 'cnn_vision', ...fields };
  }

  /** config.json of a saved tower. */
  hfConfig(): Record<string, unknown> {
    return { architectures: ['VistuneCnnVisionModel'], ...this.config };
  }

  /** Tokens of an image [C, H, W]: one per patch_size cell, row-major; sides must be multiples of patch_size. */
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    const [channels, height, width] = itemShape as [number, number, number];
    const p = this.config.patch_size;
    if (
      itemShape.length !== 3 ||
      channels !== this.config.num_channels ||
      height % p !== 0 ||
      width % p !== 0
    )
      throw new Error(
        `cnn_vision: an image item must be [${this.config.num_channels}, H, W] with H and W multiples of patch_size ${p}, got [${itemShape.join(', ')}]: resize or crop in the processor, or change patch_size`,
      );
    const grid: [number, number] = [height / p, width / p];
    return { tokens: grid[0] * grid[1], prefixTokens: 0, grid };
  }

  /** pixel_values [N, C, H, W] → tokens [N, (H/p)·(W/p), hidden]. */
  forward(pixels: tf.Tensor4D, opts: EncodeOptions = {}): EncoderOutput {
    const layout = this.featureLayout(pixels.shape.slice(1));
    const requested = opts.hiddenStates ?? [-1];
    const bad = requested.filter((i) => i !== 0 && i !== -1);
    if (bad.length)
      throw new Error(
        `cnn_vision: hidden state ${bad.join(', ')} does not exist (it has one, the tokens): select layer -1`,
      );
    const tokens = tf.tidy(() => {
      const body = this.vision_model;
      let x = pixels;
      body.stages.forEach((stage, i) => {
        x = stage.forward(x, i === 0 ? 'NCHW' : 'NHWC');
      });
      const [n, , , c] = x.shape;
      const block = this.config.patch_size / 2 ** body.stages.length;
      const [rows, cols] = layout.grid as [number, number];
      // [N, rows, block, cols, block, C] → one row per cell, the block flattened (y, x, c)
      const cells =
        block === 1 ? x : permute(tf.reshape(x, [n, rows, block, cols, block, c]), [0, 1, 3, 2, 4, 5]);
      const flat = tf.reshape(cells, [n, rows * cols, block * block * c]);
      return body.post_layernorm.forward(body.projection.forward(flat)) as tf.Tensor3D;
    });
    const hiddenStates = requested.map((_, i) => (i === 0 ? tokens : (tf.clone(tokens) as tf.Tensor3D)));
    return { hiddenStates, layout };
  }

  /** Builds a tower from a saved folder (config.json with model_type vistune_cnn_vision + safetensors). */
  static async fromPretrained(dir: string): Promise<CnnVisionEncoder> {
    const configPath = join(dir, 'config.json');
    const raw = (await readJsonFile(configPath, 'CNN tower config', {
      hint: 'expected a folder written by vistune pretrain with a cnn_vision encoder',
    })) as Record<string, unknown>;
    if (raw.model_type !== CNN_VISION_MODEL_TYPE)
      throw new Error(
        `${configPath}: model_type is ${JSON.stringify(raw.model_type)}, not "${CNN_VISION_MODEL_TYPE}": use encoder type clip_vision / siglip_vision for ViT folders`,
      );
    const { architectures: _a, ...fields } = raw;
    const model = new CnnVisionEncoder(parseCnnVisionConfig(fields, configPath), {
      init: new Initializer({ random: false }),
    });
    try {
      const weights = await loadSafetensorsDir(dir);
      try {
        model.loadStateDict(weights, { strict: true, source: dir });
      } finally {
        for (const t of weights.values()) t.dispose();
      }
      return model;
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
}
