// Answers are checked against the rendered pixels (objects found without the layout) and against the layout
// through independent parsing of the question text, not through the generator's own code paths.
import { boxIou } from '@vistune/tasks-grounding';
import { describe, expect, it } from 'vitest';
import { BoxCodec } from './box-codec.js';
import { QUESTION_KINDS, RECORD_KINDS, recordsForScene, type WorldRecord } from './instructions.js';
import { createRng } from './random.js';
import { renderScene } from './render.js';
import { generateLayout, type SceneLayout, type SceneObject } from './scene.js';
import type { PixelBox } from './shapes.js';
import { findPixelObjects, type PixelObject } from './test-utils.js';

const codec = new BoxCodec();
const SIZE = 64;

interface Sample {
  layout: SceneLayout;
  drawn: PixelObject[];
  records: WorldRecord[];
}

const samples: Sample[] = Array.from({ length: 120 }, (_, i) => {
  const rng = createRng('instructions-test', i);
  const layout = generateLayout(rng, { imageSize: SIZE });
  const records = recordsForScene(layout, rng, {
    image: `images/${i}.png`,
    idPrefix: `s${i}`,
    kinds: RECORD_KINDS,
    questionsPerImage: 8,
    codec,
  });
  return { layout, drawn: findPixelObjects(renderScene(layout)), records };
});

const named = (layout: SceneLayout, name: string): SceneObject => {
  const found = layout.objects.filter((o) => `${o.colour} ${o.shape}` === name);
  if (found.length !== 1) throw new Error(`"${name}" names ${found.length} objects`);
  return found[0] as SceneObject;
};
const drawnFor = (sample: Sample, object: SceneObject): PixelObject =>
  sample.drawn.reduce((best, d) => (boxIou(d.box, object.box) > boxIou(best.box, object.box) ? d : best));
const centreX = (box: readonly number[]): number => ((box[0] as number) + (box[2] as number)) / 2;
const centreY = (box: readonly number[]): number => ((box[1] as number) + (box[3] as number)) / 2;
const plural: Record<string, string> = {
  circles: 'circle',
  squares: 'square',
  triangles: 'triangle',
  stars: 'star',
  crosses: 'cross',
};

type Rule = readonly [RegExp, (m: RegExpExecArray, sample: Sample) => string | null];

const relationHolds: Record<string, (a: PixelBox, b: PixelBox) => boolean> = {
  'to the left of': (a, b) => a[2] <= b[0],
  'to the right of': (a, b) => a[0] >= b[2],
  above: (a, b) => a[3] <= b[1],
  below: (a, b) => a[1] >= b[3],
};
const yesNo = (value: boolean): string => (value ? 'yes' : 'no');

/** Question patterns and how to answer them independently, from the drawn pixels (colours, counts, boxes) and the layout. */
const RULES: readonly Rule[] = [
  [
    /^(?:What colour is|What is the colour of|Which colour does) the (\w+)/,
    (m, { layout, ...sample }) => {
      const matches = layout.objects.filter((o) => o.shape === m[1]);
      expect(matches.length).toBe(1);
      return drawnFor({ layout, ...sample }, matches[0] as SceneObject).colour;
    },
  ],
  [
    /shape (?:is|of) the (\w+) object\?$/,
    (m, { layout, drawn }) => {
      const matches = drawn.filter((d) => d.colour === m[1]);
      expect(matches.length).toBe(1);
      return layout.objects.find((o) => boxIou(o.box, (matches[0] as PixelObject).box) > 0.5)?.shape ?? null;
    },
  ],
  [
    /^(?:Is the (\w+ \w+) small or large|What size is the (\w+ \w+))\?$/,
    (m, sample) => {
      const box = drawnFor(sample, named(sample.layout, (m[1] ?? m[2]) as string)).box;
      return box[2] - box[0] > 0.24 * SIZE ? 'large' : 'small';
    },
  ],
  [/^How many objects are there\?$/, (_m, { drawn }) => String(drawn.length)],
  [
    /^How many (\w+) objects are there\?$/,
    (m, { drawn }) => String(drawn.filter((d) => d.colour === m[1]).length),
  ],
  [
    /^How many (\w+) are there\?$/,
    (m, { layout }) => String(layout.objects.filter((o) => o.shape === plural[m[1] as string]).length),
  ],
  [
    /^Is the (\w+ \w+) on the left or the right\?$/,
    (m, sample) =>
      centreX(drawnFor(sample, named(sample.layout, m[1] as string)).box) < SIZE / 2 ? 'left' : 'right',
  ],
  [
    /^Is the (\w+ \w+) at the top or the bottom\?$/,
    (m, sample) =>
      centreY(drawnFor(sample, named(sample.layout, m[1] as string)).box) < SIZE / 2 ? 'top' : 'bottom',
  ],
  [
    /^Is the (\w+ \w+) (to the left of|to the right of|above|below) the (\w+ \w+)\?$/,
    (m, sample) => {
      const a = drawnFor(sample, named(sample.layout, m[1] as string)).box;
      const b = drawnFor(sample, named(sample.layout, m[3] as string)).box;
      return yesNo((relationHolds[m[2] as string] as (a: PixelBox, b: PixelBox) => boolean)(a, b));
    },
  ],
  [
    /^Is there an? (\w+) (\w+)\?$/,
    (m, { layout }) => yesNo(layout.objects.some((o) => o.colour === m[1] && o.shape === m[2])),
  ],
  [
    /^Is there an? (\w+) in the image\?$/,
    (m, { layout }) => yesNo(layout.objects.some((o) => o.shape === m[1])),
  ],
  [/^Are there any (\w+) objects\?$/, (m, { drawn }) => yesNo(drawn.some((d) => d.colour === m[1]))],
];

function expectedAnswer(sample: Sample, question: string): string | null {
  for (const [pattern, answer] of RULES) {
    const m = pattern.exec(question);
    if (m !== null) return answer(m, sample);
  }
  return null;
}

const allTurns = samples.flatMap((sample) =>
  sample.records.flatMap((record) =>
    record.truth.map((truth, turn) => ({
      sample,
      record,
      truth,
      question: (record.conversations[2 * turn]?.value ?? '').replace('<image>\n', ''),
      answer: record.conversations[2 * turn + 1]?.value ?? '',
    })),
  ),
);

describe('recordsForScene', () => {
  it('writes LLaVA records: <image> first, human/gpt alternating, one truth per gpt turn', () => {
    for (const { records } of samples) {
      expect(records.length).toBeGreaterThan(0);
      expect(records.length).toBeLessThanOrEqual(8);
      for (const record of records) {
        expect(record.conversations[0]?.value.startsWith('<image>\n')).toBe(true);
        expect(record.conversations.slice(1).some((t) => t.value.includes('<image>'))).toBe(false);
        record.conversations.forEach((turn, i) => {
          expect(turn.from).toBe(i % 2 === 0 ? 'human' : 'gpt');
        });
        expect(record.truth.map((t) => t.answer)).toEqual(
          record.conversations.filter((t) => t.from === 'gpt').map((t) => t.value),
        );
        if (record.kind !== 'conversation') expect(record.truth.map((t) => t.kind)).toEqual([record.kind]);
        else expect(record.truth.length).toBeGreaterThanOrEqual(2);
      }
      expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    }
  });

  it('covers every kind, and short answers are single words or numbers', () => {
    const kinds = new Set(allTurns.map((t) => t.record.kind));
    expect([...kinds].sort()).toEqual([...RECORD_KINDS].sort());
    for (const { truth } of allTurns) {
      if (truth.kind.startsWith('vqa_')) expect(truth.answer).toMatch(/^[a-z0-9]+$/);
    }
  });

  it('asks negative questions about half the time (yes/no balance)', () => {
    const yesNo = allTurns.filter((t) => t.truth.kind === 'vqa_exist' || t.truth.kind === 'vqa_relation');
    const yes = yesNo.filter((t) => t.answer === 'yes').length / yesNo.length;
    expect(yesNo.length).toBeGreaterThan(100);
    expect(yes).toBeGreaterThan(0.35);
    expect(yes).toBeLessThan(0.65);
  });

  it('answers VQA questions as the pixels and the layout say', () => {
    let checked = 0;
    for (const { sample, truth, question, answer } of allTurns) {
      if (!truth.kind.startsWith('vqa_')) continue;
      const expected = expectedAnswer(sample, question);
      expect(expected, `unparsed question: ${question}`).not.toBeNull();
      expect(answer, question).toBe(expected);
      checked++;
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('grounding answers decode to the drawn object, region questions name it', () => {
    let checked = 0;
    for (const { sample, truth, question, answer } of allTurns) {
      if (truth.kind === 'grounding') {
        const name = /the (\w+ \w+)(?:\?| in the image\.|\.)/.exec(question)?.[1] as string;
        const decoded = codec.decode(answer, SIZE);
        expect(decoded).not.toBeNull();
        expect(
          boxIou(
            decoded as readonly [number, number, number, number],
            drawnFor(sample, named(sample.layout, name)).box,
          ),
        ).toBeGreaterThan(0.5);
        expect(truth.box).toEqual(named(sample.layout, name).box);
        checked++;
      }
      if (truth.kind === 'region_caption') {
        const region = codec.decode(question, SIZE);
        expect(region).not.toBeNull();
        const best = sample.layout.objects.reduce((a, b) =>
          boxIou(a.box, region as readonly [number, number, number, number]) >=
          boxIou(b.box, region as readonly [number, number, number, number])
            ? a
            : b,
        );
        expect(answer).toBe(`${best.colour} ${best.shape}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('descriptions mention every object once with its size, and the right count', () => {
    for (const { sample, truth, answer } of allTurns) {
      if (truth.kind !== 'description') continue;
      const n = sample.drawn.length;
      expect(answer.startsWith(n === 1 ? 'There is 1 object' : `There are ${n} objects`)).toBe(true);
      const sentences = answer.split('. ').length;
      expect(sentences).toBe(n + 1);
      for (const o of sample.layout.objects)
        expect(answer).toContain(`A ${o.size} ${o.colour} ${o.shape} is `);
    }
  });

  it('draws only the requested kinds, and is deterministic by seed', () => {
    const layout = samples[0]?.layout as SceneLayout;
    const make = (seed: number): WorldRecord[] =>
      recordsForScene(layout, createRng(seed), {
        image: 'x.png',
        idPrefix: 'x',
        kinds: ['vqa_count', 'grounding'],
        questionsPerImage: 3,
        codec,
      });
    expect(new Set(make(1).map((r) => r.kind))).toEqual(new Set(['vqa_count', 'grounding']));
    expect(make(1)).toEqual(make(1));
    expect(QUESTION_KINDS).not.toContain('conversation');
  });
});
