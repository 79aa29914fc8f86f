// Patch + position embeddings (CLIPVisionEmbeddings / SiglipVisionEmbeddings).
// The patch "convolution" (kernel = stride = patch) is a reshape/transpose + one matmul: the same maths as
// HF's Conv2d, and it trains on wasm, which has no Conv2DBackpropFilter kernel.
import { type Initializer, linear, Module, permute, tf } from '@vistune/core';
import { patchGrid, type VisionTransformerConfig } from './config.js';

/** [B, C, H, W] → [B·(H/p)·(W/p), C·p·p]: one row per patch (row-major grid), in conv-kernel (c, y, x) order. */
export function patchify(pixels: tf.Tensor4D, patch: number): tf.Tensor2D {
  const [b, c, h, w] = pixels.shape;
  const gridH = h / patch;
  const gridW = w / patch;
  const blocks = tf.reshape(pixels, [b, c, gridH, patch, gridW, patch]);
  return tf.reshape(permute(blocks, [0, 2, 4, 1, 3, 5]), [b * gridH * gridW, c * patch * patch]);
}

/** `patch_embedding.weight` [hidden, C, p, p] in HF's conv layout (+ `.bias` for SigLIP). */
class PatchEmbedding extends Module {
  readonly weight: tf.Variable<tf.Rank.R4>;
  readonly bias: tf.Variable<tf.Rank.R1> | undefined;

  constructor(hidden: number, channels: number, patch: number, withBias: boolean, init: Initializer) {
    super();
    this.weight = this.param('weight', init.normal([hidden, channels, patch, patch]) as tf.Tensor4D);
    this.bias = withBias ? this.param('bias', init.zeros([hidden]) as tf.Tensor1D) : undefined;
  }
}

/** `position_embedding.weight` [positions, hidden] (an nn.Embedding looked up with 0..positions-1). */
class PositionTable extends Module {
  readonly weight: tf.Variable<tf.Rank.R2>;

  constructor(positions: number, hidden: number, init: Initializer) {
    super();
    this.weight = this.param('weight', init.normal([positions, hidden]) as tf.Tensor2D);
  }
}

export class VisionEmbeddings extends Module {
  /** CLIP only: the learned class-token vector [hidden]. */
  readonly class_embedding: tf.Variable<tf.Rank.R1> | undefined;
  readonly patch_embedding: PatchEmbedding;
  readonly position_embedding: PositionTable;
  readonly numPatches: number;
  /** Tokens per image: patches, plus the class token for CLIP. */
  readonly numPositions: number;

  constructor(
    private readonly config: VisionTransformerConfig,
    init: Initializer,
  ) {
    super();
    const { hiddenSize: d, numChannels: c, patchSize: p } = config;
    const hasClassToken = config.modelType === 'clip_vision_model';
    this.numPatches = patchGrid(config).count;
    this.numPositions = this.numPatches + (hasClassToken ? 1 : 0);
    // HF CLIP draws the class embedding with std hidden^-0.5, everything else with initializer_range.
    this.class_embedding = hasClassToken
      ? this.param('class_embedding', init.normal([d], d ** -0.5) as tf.Tensor1D)
      : undefined;
    this.patch_embedding = this.module('patch_embedding', new PatchEmbedding(d, c, p, !hasClassToken, init));
    this.position_embedding = this.module(
      'position_embedding',
      new PositionTable(this.numPositions, d, init),
    );
  }

  /** pixels [B, C, H, W] → [B, positions, hidden]. */
  forward(pixels: tf.Tensor4D): tf.Tensor3D {
    const { imageSize, numChannels, patchSize, hiddenSize } = this.config;
    const [b, c, h, w] = pixels.shape;
    if (pixels.rank !== 4 || c !== numChannels || h !== imageSize || w !== imageSize) {
      throw new Error(
        `VisionTransformer: pixel values have shape [${pixels.shape}], the model expects [B, ${numChannels}, ${imageSize}, ${imageSize}]; ` +
          'preprocess images with the ImageProcessor built from this model’s preprocessor_config.json',
      );
    }
    const kernel = tf.reshape(this.patch_embedding.weight, [hiddenSize, numChannels * patchSize * patchSize]);
    const patches = linear(patchify(pixels, patchSize), kernel as tf.Tensor2D, this.patch_embedding.bias);
    let x = tf.reshape(patches, [b, this.numPatches, hiddenSize]);
    if (this.class_embedding) {
      const cls = tf.broadcastTo(tf.reshape(this.class_embedding, [1, 1, hiddenSize]), [b, 1, hiddenSize]);
      x = tf.concat([cls, x], 1);
    }
    // Position ids are always 0..positions-1, so the whole table is added (no gather, no scatter gradient).
    return tf.add(x, this.position_embedding.weight) as tf.Tensor3D;
  }
}
