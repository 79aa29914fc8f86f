// The "no encoder" of Fuyu / OtterHD (`image_patches`): an image [C, H, W] of any size becomes its raw patches,
// row-major, each flattened as HF FuyuImageProcessor.patchify_image does (patch row, patch column, channel
// innermost): patch_size² × C numbers per token. Images whose sides are not multiples of the patch size are
// padded at the bottom and right with `padding_value` (Fuyu pads too). Nothing here is learnt; the adapter
// (`fuyu`) projects the patches into the decoder.
import { type EncodeOptions, type EncoderOutput, type FeatureLayout, type ModalityEncoder, Module, tf } from '@vistune/core';
import { z } from 'zod';

export const imagePatchesConfigSchema = z.strictObject({
  /** Patch side in pixels (Fuyu 30). */
  patch_size: z.number().int().positive().default(30),
  num_channels: z.number().int().positive().default(3),
  /** Value of the padding pixels (after normalisation). */
  padding_value: z.number().default(0),
});
export type ImagePatchesConfig = z.output<typeof imagePatchesConfigSchema>;

export class ImagePatchesEncoder extends Module implements ModalityEncoder<tf.Tensor> {
  readonly hiddenSize: number;
  /** HF `hidden_states` holds one entry: the patches themselves. */
  readonly numHiddenStates = 1;

  constructor(readonly config: ImagePatchesConfig) {
    super();
    this.hiddenSize = config.patch_size ** 2 * config.num_channels;
  }

  /** The registry config that recreates it (saved with a composition). */
  componentConfig(): { type: string } & ImagePatchesConfig {
    return { type: 'image_patches', ...this.config };
  }

  featureLayout(itemShape: readonly number[]): FeatureLayout {
    const [channels, height, width] = itemShape;
    if (itemShape.length !== 3 || channels !== this.config.num_channels)
      throw new Error(
        `image_patches: an item must be [${this.config.num_channels}, H, W] pixels, got [${itemShape.join(', ')}]: check the processor's output or num_channels`,
      );
    const p = this.config.patch_size;
    const grid: [number, number] = [Math.ceil((height as number) / p), Math.ceil((width as number) / p)];
    return { tokens: grid[0] * grid[1], prefixTokens: 0, grid };
  }

  /** pixel_values [N, C, H, W] → patches [N, rows·cols, p²·C]. */
  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    const layout = this.featureLayout(batch.shape.slice(1));
    const requested = opts.hiddenStates ?? [-1];
    const bad = requested.filter((i) => i !== 0 && i !== -1);
    if (bad.length)
      throw new Error(`image_patches: hidden state ${bad.join(', ')} does not exist (only 0 = -1, the patches): select layer -1`);
    const patches = tf.tidy(() => patchifyImages(batch as tf.Tensor4D, this.config.patch_size, this.config.padding_value));
    const hiddenStates = requested.map((_, i) => (i === 0 ? patches : (tf.clone(patches) as tf.Tensor3D)));
    return { hiddenStates, layout };
  }
}

/** [N, C, H, W] → [N, ⌈H/p⌉·⌈W/p⌉, p·p·C] (pads bottom/right with `padValue` to whole patches). */
export function patchifyImages(images: tf.Tensor4D, p: number, padValue = 0): tf.Tensor3D {
  const [N, C, H, W] = images.shape;
  const rows = Math.ceil(H / p);
  const cols = Math.ceil(W / p);
  const padded =
    rows * p === H && cols * p === W
      ? images
      : tf.pad(
          images,
          [
            [0, 0],
            [0, 0],
            [0, rows * p - H],
            [0, cols * p - W],
          ],
          padValue,
        );
  const blocks = tf.reshape(padded, [N, C, rows, p, cols, p]);
  // → [N, rows, cols, patch row, patch column, C]
  return tf.reshape(tf.transpose(blocks, [0, 2, 4, 3, 5, 1]), [N, rows * cols, p * p * C]) as tf.Tensor3D;
}
