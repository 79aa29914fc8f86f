// Visual instruction data from a layout (survey §3.1): short VQA, counting, positions and relations, existence with
// negatives (LRV-style), referring expressions with box answers, region captions, detailed descriptions and
// multi-turn conversations. Every answer is computed from the layout, so the truth is exact.
import type { CocoRle } from '@vistune/tasks-grounding';
import type { BoxCodec } from './box-codec.js';
import type { Rng } from './random.js';
import { type SceneLayout, type SceneObject, thirdOf } from './scene.js';
import { askSegmentation, type SegmentationAnswerStyle } from './segmentation.js';
import { COLOUR_NAMES, type PixelBox, SHAPE_PLURALS, SHAPES, SIZES } from './shapes.js';

export const QUESTION_KINDS = [
  'vqa_color',
  'vqa_shape',
  'vqa_size',
  'vqa_count',
  'vqa_position',
  'vqa_relation',
  'vqa_exist',
  'grounding',
  'region_caption',
  'description',
] as const;
export type QuestionKind = (typeof QUESTION_KINDS)[number];

/** The kinds a world generates by default. */
export const RECORD_KINDS = [...QUESTION_KINDS, 'conversation'] as const;
/** Kinds generated only when `kinds` asks for them (so default worlds stay byte-identical). */
export const OPTIONAL_RECORD_KINDS = ['segmentation'] as const;
export const ALL_RECORD_KINDS = [...RECORD_KINDS, ...OPTIONAL_RECORD_KINDS] as const;
export type RecordKind = (typeof ALL_RECORD_KINDS)[number];
/** The kind of one assistant turn. */
export type TurnKind = QuestionKind | (typeof OPTIONAL_RECORD_KINDS)[number];

/** Kinds a conversation turn is drawn from (everything but the long description). */
export const CONVERSATION_TURN_KINDS: readonly QuestionKind[] = QUESTION_KINDS.filter(
  (k) => k !== 'description',
);

/** One LLaVA conversation turn. */
export interface LlavaTurn {
  from: 'human' | 'gpt';
  value: string;
}

/** The truth of one assistant turn. */
export interface TurnTruth {
  kind: TurnKind;
  /** The exact assistant text. */
  answer: string;
  /** For grounding (the answer's box) and region_caption (the asked region): the true box in pixels. */
  box?: PixelBox;
  /** For segmentation: one mask per [SEG] of the answer, in order (COCO uncompressed RLE). */
  masks?: CocoRle[];
}

/** A LLaVA-format record (`id`, `image`, `conversations`) plus the metadata evaluation needs. */
export interface WorldRecord {
  id: string;
  /** Image path relative to the split file's folder, e.g. `images/train-00003.png`. */
  image: string;
  /** Side of the square image in pixels (boxes in `truth` are in these pixels). */
  imageSize: number;
  kind: RecordKind;
  conversations: LlavaTurn[];
  /** One entry per `gpt` turn, in order. */
  truth: TurnTruth[];
}

interface QuestionAnswer extends TurnTruth {
  question: string;
}

/** Question wordings per kind; `{…}` are filled from the layout. */
export const QUESTION_TEMPLATES: Readonly<Record<QuestionKind, readonly string[]>> = {
  vqa_color: [
    'What colour is the {shape}?',
    'What is the colour of the {shape}?',
    'Which colour does the {shape} have?',
  ],
  vqa_shape: ['What shape is the {colour} object?', 'What is the shape of the {colour} object?'],
  vqa_size: ['Is the {object} small or large?', 'What size is the {object}?'],
  vqa_count: [
    'How many objects are there?',
    'How many {colour} objects are there?',
    'How many {shapes} are there?',
  ],
  vqa_position: ['Is the {object} on the left or the right?', 'Is the {object} at the top or the bottom?'],
  vqa_relation: [
    'Is the {object} to the left of the {other}?',
    'Is the {object} to the right of the {other}?',
    'Is the {object} above the {other}?',
    'Is the {object} below the {other}?',
  ],
  vqa_exist: [
    'Is there {a} {colour} {shape}?',
    'Is there {a} {shape} in the image?',
    'Are there any {colour} objects?',
  ],
  grounding: [
    'Where is the {object}? Answer with its box.',
    'Give the box of the {object}.',
    'Locate the {object} in the image.',
  ],
  region_caption: [
    'What is the object at {box}?',
    'What is in the region {box}?',
    'Name the object in {box}.',
  ],
  description: [
    'Describe the image in detail.',
    'Describe this image.',
    'What do you see in the image? Describe it.',
  ],
};

/** Where an object is, by the thirds of the image it falls in: PLACE_PHRASES[row][column]. */
export const PLACE_PHRASES = [
  ['in the top left corner', 'at the top', 'in the top right corner'],
  ['on the left', 'in the centre', 'on the right'],
  ['in the bottom left corner', 'at the bottom', 'in the bottom right corner'],
] as const;

export const BACKGROUND_WORDS = { plain: 'plain', gradient: 'gradient', noisy: 'noisy' } as const;

/** Every word list and sentence frame the world's text is made of (the tokenizer's vocabulary source). */
export function worldTextSources(): string[] {
  return [
    ...Object.values(QUESTION_TEMPLATES).flat(),
    ...PLACE_PHRASES.flat(),
    ...Object.values(BACKGROUND_WORDS),
    ...SHAPES,
    ...Object.values(SHAPE_PLURALS),
    ...COLOUR_NAMES,
    ...SIZES,
    'yes no left right top bottom a an A An',
    'There is 1 object on a background. There are objects on a background. is',
  ];
}

const objectName = (object: SceneObject): string => `${object.colour} ${object.shape}`;
const article = (word: string): string => (/^[aeiou]/.test(word) ? 'an' : 'a');

function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`instructions: template "${template}" needs {${name}}.`);
    return value;
  });
}

function countWhere(layout: SceneLayout, keep: (object: SceneObject) => boolean): number {
  return layout.objects.filter(keep).length;
}

// An object is asked about by its shape alone only when no other object shares that shape (and so on).
function uniqueBy<K extends 'shape' | 'colour'>(layout: SceneLayout, key: K): SceneObject[] {
  return layout.objects.filter((o) => countWhere(layout, (p) => p[key] === o[key]) === 1);
}

/** Margin from the third boundaries (fraction of the image) before a position question is asked. */
const POSITION_MARGIN = 0.03;

function clearThird(value: number, imageSize: number): 0 | 2 | null {
  const margin = POSITION_MARGIN * imageSize;
  if (value < imageSize / 3 - margin) return 0;
  if (value > (2 * imageSize) / 3 + margin) return 2;
  return null;
}

type Asker = (layout: SceneLayout, rng: Rng, codec: BoxCodec) => QuestionAnswer | null;

const askers: Readonly<Record<QuestionKind, Asker>> = {
  vqa_color(layout, rng) {
    const candidates = uniqueBy(layout, 'shape');
    if (candidates.length === 0) return null;
    const object = rng.pick(candidates);
    const question = fill(rng.pick(QUESTION_TEMPLATES.vqa_color), { shape: object.shape });
    return { kind: 'vqa_color', question, answer: object.colour };
  },

  vqa_shape(layout, rng) {
    const candidates = uniqueBy(layout, 'colour');
    if (candidates.length === 0) return null;
    const object = rng.pick(candidates);
    const question = fill(rng.pick(QUESTION_TEMPLATES.vqa_shape), { colour: object.colour });
    return { kind: 'vqa_shape', question, answer: object.shape };
  },

  vqa_size(layout, rng) {
    const object = rng.pick(layout.objects);
    const question = fill(rng.pick(QUESTION_TEMPLATES.vqa_size), { object: objectName(object) });
    return { kind: 'vqa_size', question, answer: object.size };
  },

  vqa_count(layout, rng) {
    const [all, byColour, byShape] = QUESTION_TEMPLATES.vqa_count as [string, string, string];
    const form = rng.int(0, 2);
    // Half of the colour/shape counts ask about something present, the rest about anything (often absent: 0).
    const present = rng.chance(0.5);
    if (form === 1) {
      const colour = present ? rng.pick(layout.objects).colour : rng.pick(COLOUR_NAMES);
      const answer = String(countWhere(layout, (o) => o.colour === colour));
      return { kind: 'vqa_count', question: fill(byColour, { colour }), answer };
    }
    if (form === 2) {
      const shape = present ? rng.pick(layout.objects).shape : rng.pick(SHAPES);
      const answer = String(countWhere(layout, (o) => o.shape === shape));
      return { kind: 'vqa_count', question: fill(byShape, { shapes: SHAPE_PLURALS[shape] }), answer };
    }
    return { kind: 'vqa_count', question: all, answer: String(layout.objects.length) };
  },

  vqa_position(layout, rng) {
    const [horizontal, vertical] = QUESTION_TEMPLATES.vqa_position as [string, string];
    const options: QuestionAnswer[] = [];
    for (const object of layout.objects) {
      const column = clearThird(object.centre[0], layout.imageSize);
      const row = clearThird(object.centre[1], layout.imageSize);
      const values = { object: objectName(object) };
      if (column !== null) {
        const answer = column === 0 ? 'left' : 'right';
        options.push({ kind: 'vqa_position', question: fill(horizontal, values), answer });
      }
      if (row !== null) {
        const answer = row === 0 ? 'top' : 'bottom';
        options.push({ kind: 'vqa_position', question: fill(vertical, values), answer });
      }
    }
    return options.length === 0 ? null : rng.pick(options);
  },

  vqa_relation(layout, rng) {
    const [leftOf, rightOf, above, below] = QUESTION_TEMPLATES.vqa_relation as [
      string,
      string,
      string,
      string,
    ];
    const options: QuestionAnswer[] = [];
    for (const a of layout.objects) {
      for (const b of layout.objects) {
        if (a === b) continue;
        const values = { object: objectName(a), other: objectName(b) };
        // Asked only when the boxes are separated along that axis, so the answer is never a matter of opinion.
        const aLeft = a.box[2] < b.box[0];
        const aRight = a.box[0] > b.box[2];
        if (aLeft || aRight) {
          options.push({
            kind: 'vqa_relation',
            question: fill(leftOf, values),
            answer: aLeft ? 'yes' : 'no',
          });
          options.push({
            kind: 'vqa_relation',
            question: fill(rightOf, values),
            answer: aRight ? 'yes' : 'no',
          });
        }
        const aAbove = a.box[3] < b.box[1];
        const aBelow = a.box[1] > b.box[3];
        if (aAbove || aBelow) {
          options.push({
            kind: 'vqa_relation',
            question: fill(above, values),
            answer: aAbove ? 'yes' : 'no',
          });
          options.push({
            kind: 'vqa_relation',
            question: fill(below, values),
            answer: aBelow ? 'yes' : 'no',
          });
        }
      }
    }
    return options.length === 0 ? null : rng.pick(options);
  },

  vqa_exist(layout, rng) {
    const [byBoth, byShape, byColour] = QUESTION_TEMPLATES.vqa_exist as [string, string, string];
    const form = rng.int(0, 2);
    const positive = rng.chance(0.5);
    const yesNo = (value: boolean): string => (value ? 'yes' : 'no');
    if (form === 0) {
      const present = new Set(layout.objects.map(objectName));
      const absent = SHAPES.flatMap((shape) => COLOUR_NAMES.map((colour) => ({ colour, shape }))).filter(
        (o) => !present.has(`${o.colour} ${o.shape}`),
      );
      const { colour, shape } = positive ? rng.pick(layout.objects) : rng.pick(absent);
      const question = fill(byBoth, { a: article(colour), colour, shape });
      return { kind: 'vqa_exist', question, answer: yesNo(present.has(`${colour} ${shape}`)) };
    }
    if (form === 1) {
      const absent = SHAPES.filter((shape) => !layout.objects.some((o) => o.shape === shape));
      const shape = positive || absent.length === 0 ? rng.pick(layout.objects).shape : rng.pick(absent);
      const answer = yesNo(layout.objects.some((o) => o.shape === shape));
      return { kind: 'vqa_exist', question: fill(byShape, { a: article(shape), shape }), answer };
    }
    const absent = COLOUR_NAMES.filter((colour) => !layout.objects.some((o) => o.colour === colour));
    const colour = positive || absent.length === 0 ? rng.pick(layout.objects).colour : rng.pick(absent);
    const answer = yesNo(layout.objects.some((o) => o.colour === colour));
    return { kind: 'vqa_exist', question: fill(byColour, { colour }), answer };
  },

  grounding(layout, rng, codec) {
    const object = rng.pick(layout.objects);
    const question = fill(rng.pick(QUESTION_TEMPLATES.grounding), { object: objectName(object) });
    return {
      kind: 'grounding',
      question,
      answer: codec.encode(object.box, layout.imageSize),
      box: object.box,
    };
  },

  region_caption(layout, rng, codec) {
    const object = rng.pick(layout.objects);
    const box = codec.encode(object.box, layout.imageSize);
    const question = fill(rng.pick(QUESTION_TEMPLATES.region_caption), { box });
    return { kind: 'region_caption', question, answer: objectName(object), box: object.box };
  },

  description(layout, rng) {
    const question = rng.pick(QUESTION_TEMPLATES.description);
    return { kind: 'description', question, answer: describeLayout(layout) };
  },
};

/** The detailed description: object count and background, then each object in reading order with its place. */
export function describeLayout(layout: SceneLayout): string {
  const { imageSize, objects } = layout;
  const n = objects.length;
  const background = BACKGROUND_WORDS[layout.background.kind];
  const head =
    n === 1
      ? `There is 1 object on a ${background} background.`
      : `There are ${n} objects on a ${background} background.`;
  const placed = objects.map((object) => ({
    object,
    row: thirdOf(object.centre[1], imageSize),
    column: thirdOf(object.centre[0], imageSize),
  }));
  placed.sort((p, q) => p.row - q.row || p.column - q.column || p.object.centre[0] - q.object.centre[0]);
  const sentences = placed.map(
    ({ object, row, column }) =>
      `A ${object.size} ${objectName(object)} is ${PLACE_PHRASES[row]?.[column] ?? 'in the centre'}.`,
  );
  return [head, ...sentences].join(' ');
}

/** One question of `kind` about the layout, or null when the layout cannot support it (e.g. no unique shape). */
export function askQuestion(
  kind: QuestionKind,
  layout: SceneLayout,
  rng: Rng,
  codec: BoxCodec,
): QuestionAnswer | null {
  return askers[kind](layout, rng, codec);
}

export interface SceneRecordOptions {
  /** Image path stored in the records. */
  image: string;
  /** Record ids are `${idPrefix}-${n}`. */
  idPrefix: string;
  /** Kinds to draw from, cycled in a shuffled order so kinds stay balanced (repeat a kind to weight it). */
  kinds: readonly RecordKind[];
  questionsPerImage: number;
  codec: BoxCodec;
  /** Turns in a conversation record (default [2, 4]). */
  conversationTurns?: readonly [number, number];
  /** How [SEG] appears in segmentation answers (default 'lisa'). */
  segmentationAnswers?: SegmentationAnswerStyle;
}

function conversationRecord(
  layout: SceneLayout,
  rng: Rng,
  options: SceneRecordOptions,
): QuestionAnswer[] | null {
  const [minTurns, maxTurns] = options.conversationTurns ?? [2, 4];
  const turns = rng.int(minTurns, maxTurns);
  const answers: QuestionAnswer[] = [];
  for (let attempt = 0; attempt < turns * 4 && answers.length < turns; attempt++) {
    const qa = askQuestion(rng.pick(CONVERSATION_TURN_KINDS), layout, rng, options.codec);
    if (qa !== null && !answers.some((a) => a.question === qa.question)) answers.push(qa);
  }
  return answers.length >= minTurns ? answers : null;
}

function toRecord(
  id: string,
  layout: SceneLayout,
  image: string,
  kind: RecordKind,
  qas: QuestionAnswer[],
): WorldRecord {
  const conversations: LlavaTurn[] = qas.flatMap((qa, turn) => [
    { from: 'human' as const, value: turn === 0 ? `<image>\n${qa.question}` : qa.question },
    { from: 'gpt' as const, value: qa.answer },
  ]);
  const truth = qas.map(({ kind: turnKind, answer, box, masks }): TurnTruth => {
    if (masks !== undefined) return { kind: turnKind, answer, masks };
    return box === undefined ? { kind: turnKind, answer } : { kind: turnKind, answer, box };
  });
  return { id, image, imageSize: layout.imageSize, kind, conversations, truth };
}

/** Up to `questionsPerImage` records about one scene, no question asked twice. */
export function recordsForScene(layout: SceneLayout, rng: Rng, options: SceneRecordOptions): WorldRecord[] {
  if (options.kinds.length === 0)
    throw new Error('recordsForScene: kinds is empty; pass at least one record kind.');
  const order = rng.shuffle(options.kinds);
  const records: WorldRecord[] = [];
  const asked = new Set<string>();
  for (
    let attempt = 0;
    attempt < options.questionsPerImage * 3 && records.length < options.questionsPerImage;
    attempt++
  ) {
    const kind = order[attempt % order.length] as RecordKind;
    const qas =
      kind === 'conversation'
        ? conversationRecord(layout, rng, options)
        : kind === 'segmentation'
          ? [{ kind, ...askSegmentation(layout, rng, options.segmentationAnswers) }]
          : [askQuestion(kind, layout, rng, options.codec)];
    if (qas === null || qas.some((qa) => qa === null)) continue;
    const valid = qas as QuestionAnswer[];
    const key = valid.map((qa) => qa.question).join('\n');
    if (asked.has(key)) continue;
    asked.add(key);
    records.push(toRecord(`${options.idPrefix}-${records.length}`, layout, options.image, kind, valid));
  }
  return records;
}
