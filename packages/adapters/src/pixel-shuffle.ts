// nanoVLM / SmolVLM (Idefics3) connector: pixel shuffle by factor s over the patch grid — each s×s block of
// patches becomes one token of s²·D features (block row outer, block column inner, feature innermost) —
// then one Linear (no bias by default). s² fewer tokens for the LLM.
import {
  type Adapter,
  type AdapterContext,
  type FeatureLayout,
  Initializer,
  Linear,
  Module,
  tf,
} from '@vistune/core';
import type { PixelShuffleProjectorConfig } from './config.js';

/** Grid [rows, cols] of a layout's body; a square is assumed when the encoder gives none. */
function gridOf(layout: FeatureLayout): readonly [number, number] {
  if (layout.grid) return layout.grid;
  const frames = layout.frames ?? 1;
  const side = Math.round(Math.sqrt(layout.tokens / frames));
  if (side * side * frames !== layout.tokens) {
    throw new Error(
      `pixel_shuffle: ${layout.tokens} tokens per frame form no square grid and the encoder gave no grid`,
    );
  }
  return [side, side];
}

/** x [N, rows·cols, D] (row-major grid) → [N, (rows/s)·(cols/s), s²·D]. */
export function pixelShuffle(x: tf.Tensor3D, grid: readonly [number, number], factor: number): tf.Tensor3D {
  const [N, tokens, D] = x.shape;
  const [rows, cols] = grid;
  const s = factor;
  if (rows * cols !== tokens)
    throw new Error(`pixelShuffle: grid ${rows}×${cols} does not hold ${tokens} tokens`);
  if (rows % s || cols % s)
    throw new Error(`pixelShuffle: grid ${rows}×${cols} is not divisible by the factor ${s}`);
  return tf.tidy(() => {
    // [N·rows/s, s (block row), cols/s, s·D (block column, feature)] → swap the middle axes.
    const blocks = tf.reshape(x, [(N * rows) / s, s, cols / s, s * D]);
    return tf.reshape(tf.transpose(blocks, [0, 2, 1, 3]), [
      N,
      (rows / s) * (cols / s),
      s * s * D,
    ]) as tf.Tensor3D;
  });
}

export class PixelShuffleProjector extends Module implements Adapter {
  readonly inDim: number;
  readonly outDim: number;
  readonly factor: number;
  readonly proj: Linear;

  constructor(
    readonly config: PixelShuffleProjectorConfig,
    init: Initializer = new Initializer({ seed: config.seed, std: config.std }),
  ) {
    super();
    this.inDim = config.inDim;
    this.outDim = config.outDim;
    this.factor = config.factor;
    this.proj = this.module(
      'proj',
      new Linear(config.inDim * config.factor ** 2, config.outDim, { init, bias: config.bias }),
    );
  }

  numSlots(layout: FeatureLayout): number {
    this.checkLayout(layout);
    const [rows, cols] = gridOf(layout);
    return (layout.frames ?? 1) * (rows / this.factor) * (cols / this.factor);
  }

  /** features [N, frames·rows·cols, inDim] → [N, numSlots, outDim]; video frames are shuffled one by one. */
  forward(features: tf.Tensor3D, ctx: AdapterContext): tf.Tensor3D {
    this.checkLayout(ctx.layout);
    const frames = ctx.layout.frames ?? 1;
    const [N, tokens, D] = features.shape;
    return tf.tidy(() => {
      const perFrame = tf.reshape(features, [N * frames, tokens / frames, D]) as tf.Tensor3D;
      const shuffled = pixelShuffle(perFrame, gridOf(ctx.layout), this.factor);
      return tf.reshape(this.proj.forward(shuffled), [N, -1, this.outDim]) as tf.Tensor3D;
    });
  }

  private checkLayout(layout: FeatureLayout): void {
    if (layout.prefixTokens > 0) {
      throw new Error(
        `pixel_shuffle: the features start with ${layout.prefixTokens} non-grid token(s) (CLS): select them away with strategy 'default'`,
      );
    }
    const [rows, cols] = gridOf(layout);
    if (rows % this.factor || cols % this.factor) {
      throw new Error(
        `pixel_shuffle: patch grid ${rows}×${cols} is not divisible by factor ${this.factor}: pick a factor dividing both`,
      );
    }
  }
}
