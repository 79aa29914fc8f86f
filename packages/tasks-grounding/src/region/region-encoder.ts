// Region inputs (GPT4RoI / PVIT / Ferret-style "<region>" in the prompt) as a modality of MultimodalModel.
// An item is one flat tensor: the image's pixel values [C·H·W] followed by K boxes [x1, y1, x2, y2] in
// processed-image pixels (see regionItem). The encoder runs the image tower, drops its prefix (CLS) tokens and
// pools each box from the patch grid with RoIAlign: per item K·s·s tokens, laid out like K frames of an s×s
// grid, which the region adapter turns into slots for the K `<region>` placeholders (in text order).

import type { EncodeOptions, EncoderOutput, FeatureLayout, ModalityEncoder } from '@vistune/core';
import { Module, tf } from '@vistune/core';
import type { ImageTransform } from '@vistune/encoders';
import { type Box, clampBox } from '../box.js';
import { roiAlign } from './roi-align.js';

/** The placeholder a prompt uses for a marked region. */
export const REGION_PLACEHOLDER = '<region>';

export interface RegionEncoderOptions {
  /** The image tower (a ViT whose layout has a patch grid); usually the image modality's own encoder. */
  vision: ModalityEncoder<tf.Tensor4D>;
  /**
   * true: the tower is this module's child `vision` (its parameters are named here). false: it is only
   * referenced, because another modality (`modalities.image.encoder`) already owns it; sharing the module
   * keeps one copy of the weights and one name per parameter.
   */
  ownsVision: boolean;
  /** [channels, height, width] of the pixel values the tower takes. */
  imageShape: readonly [number, number, number];
  /** RoIAlign bins per side (GPT4RoI: 14; default 7). */
  outputSize?: number;
  /** Sample points per bin side (GPT4RoI: 2); ≤ 0 = adaptive. */
  samplingRatio?: number;
  /** torchvision aligned=True (default). */
  aligned?: boolean;
}

export class RegionEncoder extends Module implements ModalityEncoder<tf.Tensor> {
  readonly vision: ModalityEncoder<tf.Tensor4D>;
  readonly imageShape: readonly [number, number, number];
  readonly outputSize: number;
  readonly samplingRatio: number;
  readonly aligned: boolean;
  /** Whether the tower is a child of this module (else it is only referenced and not disposed here). */
  readonly ownsVision: boolean;

  constructor(opts: RegionEncoderOptions) {
    super();
    this.ownsVision = opts.ownsVision;
    this.vision = opts.ownsVision ? this.module('vision', opts.vision) : opts.vision;
    this.imageShape = opts.imageShape;
    this.outputSize = opts.outputSize ?? 7;
    this.samplingRatio = opts.samplingRatio ?? 2;
    this.aligned = opts.aligned ?? true;
    if (!Number.isInteger(this.outputSize) || this.outputSize < 1)
      throw new Error(`RegionEncoder: outputSize must be a positive integer, got ${this.outputSize}`);
  }

  get hiddenSize(): number {
    return this.vision.hiddenSize;
  }

  get numHiddenStates(): number {
    return this.vision.numHiddenStates;
  }

  private get pixelCount(): number {
    const [c, h, w] = this.imageShape;
    return c * h * w;
  }

  /** Boxes per item of this flat length. */
  regionsPerItem(length: number): number {
    const rest = length - this.pixelCount;
    if (rest <= 0 || rest % 4 !== 0) {
      throw new Error(
        `RegionEncoder: a region item must be [C·H·W + 4·K] = [${this.pixelCount} + 4·K] values (pixels, then K ≥ 1 boxes), got ${length}; build it with regionItem()`,
      );
    }
    return rest / 4;
  }

  featureLayout(itemShape: readonly number[]): FeatureLayout {
    if (itemShape.length !== 1)
      throw new Error(`RegionEncoder: a region item is 1-D (pixels then boxes), got shape [${itemShape}]`);
    const K = this.regionsPerItem(itemShape[0]);
    const s = this.outputSize;
    return { tokens: K * s * s, prefixTokens: 0, grid: [s, s], frames: K };
  }

  /** batch [N, C·H·W + 4·K] → per requested hidden state [N, K·s·s, hidden]. */
  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    if (batch.rank !== 2)
      throw new Error(`RegionEncoder.forward: expected [N, length] items, got [${batch.shape}]`);
    const [N, length] = batch.shape as [number, number];
    const K = this.regionsPerItem(length);
    const [c, h, w] = this.imageShape;
    const P = this.pixelCount;
    const flatBoxes = tf.tidy(() => tf.slice(batch, [0, P], [N, 4 * K]).dataSync());
    const boxes = Array.from({ length: N }, (_, n) =>
      Array.from({ length: K }, (_, k): Box => {
        const at = (n * K + k) * 4;
        return [flatBoxes[at], flatBoxes[at + 1], flatBoxes[at + 2], flatBoxes[at + 3]];
      }),
    );
    const pixels = tf.reshape(tf.slice(batch, [0, 0], [N, P]), [N, c, h, w]) as tf.Tensor4D;
    const out = this.vision.forward(pixels, opts);
    pixels.dispose();
    const { grid, prefixTokens } = out.layout;
    if (!grid) {
      tf.dispose(out.hiddenStates);
      throw new Error(
        'RegionEncoder: the vision encoder reports no patch grid (layout.grid); RoIAlign needs one',
      );
    }
    const hiddenStates = out.hiddenStates.map((hidden) =>
      tf.tidy(() => {
        const body = prefixTokens
          ? (tf.slice(hidden, [0, prefixTokens, 0], [-1, -1, -1]) as tf.Tensor3D)
          : hidden;
        return roiAlign(body, grid, boxes, {
          outputSize: this.outputSize,
          spatialScale: [grid[1] / w, grid[0] / h],
          samplingRatio: this.samplingRatio,
          aligned: this.aligned,
        });
      }),
    );
    tf.dispose(out.hiddenStates);
    return { hiddenStates, layout: this.featureLayout([length]) };
  }
}

/**
 * One region item: pixel values [C, H, W] of the processed image and boxes given in ORIGINAL-image pixels,
 * mapped into the processed frame with the processor's transform and clamped to it.
 */
export function regionItem(
  pixelValues: tf.Tensor3D,
  boxes: readonly Box[],
  transform: ImageTransform,
): tf.Tensor1D {
  if (boxes.length === 0) throw new Error('regionItem: give at least one box');
  const { width, height } = transform.steps;
  const processed = boxes.map((b) => {
    const [x1, y1] = transform.toProcessed(b[0], b[1]);
    const [x2, y2] = transform.toProcessed(b[2], b[3]);
    return clampBox([x1, y1, x2, y2], width, height);
  });
  return tf.tidy(() =>
    tf.concat([tf.reshape(pixelValues, [-1]), tf.tensor1d(processed.flat())]),
  ) as tf.Tensor1D;
}
