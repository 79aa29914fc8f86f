// The world's questions and answers: every word here is in the tokenizer's vocabulary.
import { COLOUR_NAMES, SHAPES, SIZE_NAMES } from '../shapes.js';

export const QUESTIONS = {
  shape: [
    'What shape is this?',
    'What shape is the object?',
    'Which shape do you see?',
    'Name the shape of these points.',
  ],
  colour: ['What colour is this?', 'What colour is the object?', 'Which colour are the points?'],
} as const;
export type QuestionKind = keyof typeof QUESTIONS;

/** Every text the world writes or a user of its models is likely to type, for the vocabulary. */
export function worldTexts(): string[] {
  return [
    ...Object.values(QUESTIONS).flat(),
    ...SHAPES,
    ...COLOUR_NAMES,
    ...SIZE_NAMES,
    'USER: ASSISTANT:',
    'It is a an the object point cloud what which shape colour color size describe yes no.',
  ];
}
