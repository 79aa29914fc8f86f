// Segmentation records (LISA-style, survey §5.1): "Segment the red circle." → "Sure, [SEG]." with the object's
// exact mask as truth. One [SEG] per object asked for, in the order the question names them. Only generated
// when `segmentation` is among the requested kinds, so default worlds are unchanged.
import { type CocoRle, maskToRle, SEG_TOKEN } from '@vistune/tasks-grounding';
import { renderObjectMasks } from './masks.js';
import type { Rng } from './random.js';
import type { SceneLayout, SceneObject } from './scene.js';

/** How an object is referred to: by its full name, or by shape / colour alone when that is unique. */
export const SEGMENTATION_QUESTIONS = {
  one: [
    'Segment the {object}.',
    'Please segment the {object} in this image.',
    'Can you segment the {object} in this image?',
    'What is the {object} in this image? Please output segmentation mask.',
  ],
  two: ['Segment the {object} and the {other}.', 'Please segment the {object} and the {other}.'],
} as const;

/** LISA's answer forms; `{seg}` is one [SEG] per object ("[SEG] and [SEG]" for two). */
export const SEGMENTATION_ANSWERS = ['Sure, {seg}.', 'It is {seg}.', 'Sure, it is {seg}.'] as const;

/**
 * How each [SEG] appears in the answer: `lisa` alone ("Sure, [SEG]."); `labelled` followed by the name used
 * in the question ("Sure, [SEG] red circle."), so that predicting the next token makes the [SEG] state carry
 * the referent (a small LLM trained from scratch does not carry it into the state before a bare [SEG]).
 */
export const SEGMENTATION_ANSWER_STYLES = ['lisa', 'labelled'] as const;
export type SegmentationAnswerStyle = (typeof SEGMENTATION_ANSWER_STYLES)[number];

/** Text the world tokenizer needs for segmentation records (without the [SEG] token itself). */
export function segmentationTextSources(): string[] {
  return [
    ...Object.values(SEGMENTATION_QUESTIONS).flat(),
    ...SEGMENTATION_ANSWERS.map((a) => a.replace('{seg}', ' and ')),
    'object',
  ];
}

export interface SegmentationAnswer {
  question: string;
  answer: string;
  /** One mask per [SEG] in the answer, in order. */
  masks: CocoRle[];
}

function uniqueKey(layout: SceneLayout, object: SceneObject, key: 'shape' | 'colour'): boolean {
  return layout.objects.filter((o) => o[key] === object[key]).length === 1;
}

/** Ways to name the object unambiguously in this layout (full name always works: no two share both). */
function referringNames(layout: SceneLayout, object: SceneObject): string[] {
  const names = [`${object.colour} ${object.shape}`];
  if (uniqueKey(layout, object, 'shape')) names.push(object.shape);
  if (uniqueKey(layout, object, 'colour')) names.push(`${object.colour} object`);
  return names;
}

/** A segmentation question about one object, or two when the scene has two and the draw says so. */
export function askSegmentation(
  layout: SceneLayout,
  rng: Rng,
  style: SegmentationAnswerStyle = 'lisa',
): SegmentationAnswer {
  const masks = renderObjectMasks(layout).map((m) => maskToRle(m.data, m.width, m.height));
  const pair = layout.objects.length >= 2 && rng.chance(0.25);
  const first = rng.int(0, layout.objects.length - 1);
  const indices = [first];
  if (pair) {
    const second = rng.int(0, layout.objects.length - 2);
    indices.push(second >= first ? second + 1 : second);
  }
  const names = indices.map((i) => rng.pick(referringNames(layout, layout.objects[i] as SceneObject)));
  const template = rng.pick(pair ? SEGMENTATION_QUESTIONS.two : SEGMENTATION_QUESTIONS.one);
  const question = template.replace('{object}', names[0] as string).replace('{other}', names[1] ?? '');
  // Both styles draw the same random numbers: only the answer text differs.
  const seg = names.map((name) => (style === 'labelled' ? `${SEG_TOKEN} ${name}` : SEG_TOKEN)).join(' and ');
  const answer = rng.pick(SEGMENTATION_ANSWERS).replace('{seg}', seg);
  return { question, answer, masks: indices.map((i) => masks[i] as CocoRle) };
}
