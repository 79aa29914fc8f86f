// Registry entries: encoder `region_roi_align` (RoIAlign over an image tower it builds) and adapter
// `region_mlp`. Sharing the image modality's tower is done in code (RegionEncoder with ownsVision: false).
import type { ComponentConfig, ModalityEncoder, Registry, tf } from '@vistune/core';
import { z } from 'zod';
import { RegionProjector } from './region-adapter.js';
import { RegionEncoder } from './region-encoder.js';

const positiveInt = z.number().int().positive();

export const regionRoiAlignSchema = z.object({
  /** The image tower's own encoder config (e.g. `{ type: clip_vision, pretrained: … }`). */
  vision: z.looseObject({ type: z.string() }),
  /** Side of the square pixel values the tower takes (default: the tower's imageSize). */
  imageSize: positiveInt.optional(),
  channels: positiveInt.default(3),
  outputSize: positiveInt.default(7),
  samplingRatio: z.number().int().default(2),
  aligned: z.boolean().default(true),
});

export const regionMlpSchema = z.object({
  inDim: positiveInt,
  outDim: positiveInt,
  outputSize: positiveInt.default(7),
  slots: positiveInt.default(1),
  hidden: positiveInt.optional(),
  seed: z.number().int().default(0),
  std: z.number().positive().default(0.02),
});

export function registerRegion(registry: Registry): void {
  registry.add({
    kind: 'encoder',
    name: 'region_roi_align',
    about: 'Region inputs: image tower → patch grid → RoIAlign (s×s, aligned) per box of a <region> item',
    schema: regionRoiAlignSchema,
    create: async (c, ctx) => {
      const vision = (await ctx.registry.create('encoder', c.vision as ComponentConfig, {
        path: ctx.path ? `${ctx.path}.vision` : 'vision',
      })) as ModalityEncoder<tf.Tensor4D> & { imageSize?: number };
      const side = c.imageSize ?? vision.imageSize;
      if (!side) {
        vision.dispose();
        throw new Error(
          `${ctx.path || 'encoder'}.imageSize: the vision encoder does not report its input size; set imageSize`,
        );
      }
      return new RegionEncoder({
        vision,
        ownsVision: true,
        imageShape: [c.channels, side, side],
        outputSize: c.outputSize,
        samplingRatio: c.samplingRatio,
        aligned: c.aligned,
      });
    },
  });
  registry.add({
    kind: 'adapter',
    name: 'region_mlp',
    about:
      'Region adapter: flatten each region’s s×s RoI features → Linear → GELU → Linear → `slots` LLM tokens',
    schema: regionMlpSchema,
    create: (c) => new RegionProjector(c),
  });
}
