// The [SEG] head's answer annotation: masks at the original image size (a second pass over prompt + answer,
// LISA's inference), summarised as COCO RLE for --json and blended over the image for --overlay.
import type { AnswerAnnotation, AnswerContext } from '@vistune/core';
import type { ImageTransform } from '@vistune/encoders';
import { overlayMasks } from '../draw/index.js';
import type { LisaSegHead } from './head.js';
import { segmentAnswer } from './model.js';
import { maskSummary } from './summary.js';

export async function annotateMasks(
  head: LisaSegHead,
  ctx: AnswerContext,
): Promise<AnswerAnnotation | undefined> {
  const transform = ctx.processed[head.options.modality]?.[0]?.transform as ImageTransform | undefined;
  if (!transform) return undefined;
  const { originalWidth: width, originalHeight: height } = transform.steps;
  const masks = segmentAnswer(ctx.model, head, ctx.promptIds, ctx.answerIds, ctx.media, {
    width,
    height,
    transform,
  });
  const summaries = masks.map((m) => maskSummary(m, width, height));
  return {
    json: { masks: summaries },
    lines: summaries.map(
      (m, k) => `mask ${k + 1}: ${m.area} px of ${m.size[1]}×${m.size[0]}, bbox ${JSON.stringify(m.bbox)}`,
    ),
    draw: masks.length
      ? async (input, output) => {
          await overlayMasks(input, masks, output);
        }
      : undefined,
  };
}
