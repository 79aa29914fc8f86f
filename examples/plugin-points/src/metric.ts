// `shape_accuracy` (registry kind `metric`): did the answer name the right shape? The reference's first shape
// word is the truth; the prediction's first shape word must equal it ("It is a cube." scores 1 against
// "cube"). Answers whose reference names no shape (colour questions) are not scored: score() → undefined.
import { type AnswerMetric, normaliseAnswer, type ScoredAnswer } from '@vistune/core';
import { z } from '@vistune/core';
import { SHAPES } from './shapes.js';

export const shapeAccuracySchema = z.strictObject({
  /** The shape words to look for (default: the world's shapes). */
  shapes: z
    .array(z.string().min(1))
    .min(1)
    .default([...SHAPES]),
});
export type ShapeAccuracyConfig = z.output<typeof shapeAccuracySchema>;

/** The first word of `text` (VQA-normalised, plural s dropped) that is one of `shapes`, else undefined. */
export function shapeWord(text: string, shapes: readonly string[]): string | undefined {
  const known = new Set(shapes.map((s) => s.toLowerCase()));
  for (const word of normaliseAnswer(text).split(' ')) {
    if (known.has(word)) return word;
    if (word.endsWith('s') && known.has(word.slice(0, -1))) return word.slice(0, -1);
  }
  return undefined;
}

export function shapeAccuracy(config: ShapeAccuracyConfig): AnswerMetric {
  return {
    name: 'shape_accuracy',
    score(answer: ScoredAnswer) {
      const truth = shapeWord(answer.reference, config.shapes);
      if (truth === undefined) return undefined;
      return shapeWord(answer.prediction, config.shapes) === truth ? 1 : 0;
    },
  };
}
