// Answer metrics for boxes in text (kind `metric`): the reference's first box, decoded with a registered codec
// in the record's image frame, against the answer's first box — Acc@threshold and IoU (a missing box scores 0).
import type { AnswerMetric, Registry, ScoredAnswer } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { z } from 'zod';
import { boxIou } from '../box.js';
import type { LocationCodec } from '../codecs/types.js';

export const boxAnswerMetricSchema = z.object({
  /** Registry codec config that reads the boxes (`shikra`, or `{ type: shikra, bins: 32 }` …). */
  codec: z.union([z.string().min(1), z.looseObject({ type: z.string().min(1) })]).default('shikra'),
  threshold: z.number().gt(0).max(1).default(0.5),
});

/** The first image transform of an answer's media (boxes are in that image's pixels). */
function imageTransform(answer: ScoredAnswer): ImageTransform | undefined {
  return Object.values(answer.processed)
    .flat()
    .map((p) => p.transform)
    .find((t): t is ImageTransform => t instanceof ImageTransform);
}

function boxScore(
  codec: LocationCodec,
  answer: ScoredAnswer,
  score: (iou: number) => number,
): number | undefined {
  const transform = imageTransform(answer);
  if (!transform) return undefined;
  const reference = codec.decodeAll(answer.reference, transform).boxes[0];
  if (!reference) return undefined;
  const predicted = codec.decodeAll(answer.prediction, transform).boxes[0];
  return predicted ? score(boxIou(predicted, reference)) : 0;
}

export function registerBoxAnswerMetrics(registry: Registry): void {
  const codecOf = (c: z.output<typeof boxAnswerMetricSchema>, r: Registry) =>
    r.createSync('codec', typeof c.codec === 'string' ? { type: c.codec } : c.codec) as LocationCodec;
  registry.add({
    kind: 'metric',
    name: 'box_accuracy',
    about:
      'Boxes in answers: first predicted box IoU ≥ threshold (0.5) with the reference box, read by a codec',
    schema: boxAnswerMetricSchema,
    create: (c, ctx): AnswerMetric => {
      const codec = codecOf(c, ctx.registry);
      return {
        name: 'box_accuracy',
        score: (a) => boxScore(codec, a, (iou) => (iou >= c.threshold ? 1 : 0)),
      };
    },
  });
  registry.add({
    kind: 'metric',
    name: 'box_iou',
    about: 'Boxes in answers: IoU of the first predicted box with the reference box (missing box = 0)',
    schema: boxAnswerMetricSchema,
    create: (c, ctx): AnswerMetric => {
      const codec = codecOf(c, ctx.registry);
      return { name: 'box_iou', score: (a) => boxScore(codec, a, (iou) => iou) };
    },
  });
}
