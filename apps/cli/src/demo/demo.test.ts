import { availableParallelism } from 'node:os';
import { buildExample, getTemplate, IGNORE_INDEX, parseRecord, Tokenizer } from '@vistune/core';
import {
  buildWorldTokenizer,
  COLOUR_NAMES,
  generateScene,
  SHAPES,
  SIZES,
  type WorldRecord,
  worldVocabulary,
} from '@vistune/demo-world';
import { describe, expect, it } from 'vitest';
import { demoPlan } from './config.js';
import { mergeByImage } from './data.js';
import { evalPrompts, shuffledMedia, splitTurns } from './evaluate.js';
import { demoMetrics, formatDemoHeadline, headline, VQA_KINDS } from './report.js';
import { defaultDemoWorkers, fitSteps } from './run.js';
import { cellTargets } from './tower.js';

const SLOTS = 16;

function worldRecords(images: number, questionsPerImage = 4): WorldRecord[] {
  return Array.from(
    { length: images },
    (_, i) => generateScene({ seed: 3, questionsPerImage }, 'test', i).records,
  ).flat();
}

function worldTokenizer(): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = buildWorldTokenizer(worldVocabulary());
  return Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
}

describe('mergeByImage', () => {
  it('puts every question about an image into one conversation with a single <image> marker', () => {
    const records = worldRecords(5);
    const merged = mergeByImage(records);
    expect(merged).toHaveLength(5);
    for (const sample of merged) {
      const own = records.filter((r) => r.image === sample.image);
      expect(sample.conversations).toHaveLength(own.reduce((n, r) => n + r.conversations.length, 0));
      const markers = sample.conversations.filter((t) => t.value.includes('<image>'));
      expect(markers).toEqual([sample.conversations[0]]);
      const gpt = sample.conversations.filter((t) => t.from === 'gpt').map((t) => t.value);
      expect(gpt).toEqual(own.flatMap((r) => r.truth.map((t) => t.answer)));
    }
  });
});

describe('evalPrompts', () => {
  it('asks each turn exactly as training showed it: the vicuna_v1 ids before that answer', () => {
    const tokenizer = worldTokenizer();
    const imageId = tokenizer.tokenToId('<image>') as number;
    const records = worldRecords(12).filter((r) => r.truth.length >= 2);
    expect(records.length).toBeGreaterThan(0);
    const template = getTemplate('vicuna_v1', { systemPrompt: '' });
    for (const record of records) {
      const parsed = parseRecord(record, { file: 'test.json', index: 0 }, { imageFolder: '/world' });
      if (!parsed.ok) throw new Error(parsed.message);
      const built = buildExample(parsed.sample, {
        tokenizer,
        template,
        imageToken: { id: imageId, slots: SLOTS },
        maxLength: 1024,
      });
      if (!built.ok) throw new Error(built.message);
      const { inputIds, labels } = built.example;
      // Each answer starts where a run of supervised labels starts.
      const starts: number[] = [];
      for (let t = 1; t < labels.length; t++)
        if (labels[t] !== IGNORE_INDEX && labels[t - 1] === IGNORE_INDEX) starts.push(t);
      const prompts = evalPrompts([record], tokenizer, { tokenId: imageId, slots: SLOTS });
      expect(prompts.map((p) => p.turn)).toEqual(record.truth.map((_, k) => k));
      prompts.forEach((p, k) => {
        expect(p.ids).toEqual(Array.from(inputIds.subarray(0, starts[k])));
        expect(p.kind).toBe(record.truth[k]?.kind);
      });
    }
  });
});

describe('shuffledMedia (the shuffled-media control)', () => {
  it('gives every prompt another image, the same one for all prompts of an image, and keeps the text', () => {
    const tokenizer = worldTokenizer();
    const imageId = tokenizer.tokenToId('<image>') as number;
    const records = worldRecords(6);
    const prompts = evalPrompts(records, tokenizer, { tokenId: imageId, slots: SLOTS });
    const shuffled = shuffledMedia(prompts);
    expect(shuffled).toHaveLength(prompts.length);
    const moved = new Map<string, string>();
    shuffled.forEach((p, i) => {
      const before = prompts[i] as (typeof prompts)[number];
      expect(p.image).not.toBe(before.image);
      expect(p.ids).toEqual(before.ids);
      expect([p.recordId, p.turn, p.kind]).toEqual([before.recordId, before.turn, before.kind]);
      expect(moved.get(before.image) ?? p.image).toBe(p.image);
      moved.set(before.image, p.image);
    });
    // A permutation of the images: each image is some other image's stand-in exactly once.
    expect(new Set(moved.values()).size).toBe(moved.size);
    expect(() => shuffledMedia(prompts.filter((p) => p.image === prompts[0]?.image))).toThrow(/two images/);
  });

  it('prints the control beside each headline figure', () => {
    const records = worldRecords(10);
    const right = Object.fromEntries(records.map((r) => [r.id, r.truth.map((t) => t.answer)]));
    const wrong = Object.fromEntries(records.map((r) => [r.id, r.truth.map(() => 'no idea')]));
    const metrics = demoMetrics(records, right);
    const control = headline(demoMetrics(records, wrong));
    expect(control).toEqual({ vqaExactMatch: 0, countAccuracy: 0, groundingAcc50: 0, groundingMeanIou: 0 });
    const lines = formatDemoHeadline(metrics, control).split('\n');
    expect(lines).toHaveLength(4);
    // The true answers' boxes are the grid-rounded truth: every hit, mean IoU below 1.
    for (const line of lines.slice(0, 3))
      expect(line).toMatch(/ 100\.0 % .*met\).*shuffled images\s+0\.0 %$/);
    expect(lines[3]).toMatch(/mean IoU\)\s+\d+\.\d %\s+shuffled images\s+0\.0 %$/);
    expect(formatDemoHeadline(metrics)).not.toMatch(/shuffled/);
  });
});

describe('demoMetrics', () => {
  it('scores per question kind across records and conversations, with the headline figures', () => {
    const records = worldRecords(40);
    const predictions: Record<string, string[]> = {};
    let vqa = 0;
    let vqaWrong = 0;
    let counts = 0;
    let countsWrong = 0;
    let boxes = 0;
    let boxesWrong = 0;
    for (const r of records) {
      predictions[r.id] = r.truth.map((t) => {
        if (VQA_KINDS.includes(t.kind)) {
          vqa++;
          // Every third VQA answer is wrong; the others carry noise the normalisation removes.
          if (vqa % 3 === 0) {
            vqaWrong++;
            return 'purple-ish';
          }
          return ` ${t.answer.toUpperCase()}.`;
        }
        if (t.kind === 'vqa_count') {
          counts++;
          if (counts % 4 === 0) {
            countsWrong++;
            return String(Number(t.answer) + 1);
          }
          return `There are ${['zero', 'one', 'two', 'three', 'four', 'five'][Number(t.answer)]} of them.`;
        }
        if (t.kind === 'grounding') {
          boxes++;
          if (boxes % 2 === 0) {
            boxesWrong++;
            return '[0,0,1,1]';
          }
        }
        return t.answer;
      });
    }
    expect(vqa * counts * boxes).toBeGreaterThan(0);
    const m = demoMetrics(records, predictions);
    expect(m.vqaExactMatch).toBeCloseTo((vqa - vqaWrong) / vqa, 10);
    expect(m.countAccuracy).toBeCloseTo((counts - countsWrong) / counts, 10);
    expect(m.groundingAcc50).toBeCloseTo((boxes - boxesWrong) / boxes, 10);
    const overall = m.perQuestionKind.at(-1);
    expect(overall?.kind).toBe('overall');
    expect(overall?.turns).toBe(records.reduce((n, r) => n + r.truth.length, 0));
    expect(m.perRecordKind.overall.turns).toBe(overall?.turns);
    expect(m.meetsTargets.vqaExactMatch).toBe((vqa - vqaWrong) / vqa >= 0.8);
  });

  it('splitTurns keys one-turn records by turn and keeps missing answers missing', () => {
    const records = worldRecords(3).filter((r) => r.truth.length >= 2);
    const first = records[0] as WorldRecord;
    const split = splitTurns([first], { [first.id]: ['only the first'] });
    expect(split.records.map((r) => r.id)).toEqual(first.truth.map((_, k) => `${first.id}#${k}`));
    expect(split.records.map((r) => r.kind)).toEqual(first.truth.map((t) => t.kind));
    expect(split.predictions).toEqual({ [`${first.id}#0`]: 'only the first' });
  });
});

describe('fitSteps', () => {
  it('keeps the planned steps where they fit the budget and shortens both stages in proportion where not', () => {
    const base = demoPlan('default');
    const plan = {
      ...base,
      align: { ...base.align, steps: 1000 },
      instruct: { ...base.instruct, steps: 10000 },
      trainBudgetSeconds: 780,
    };
    expect(fitSteps(plan, 0.06)).toEqual({ align: 1000, instruct: 10000 }); // 660 s
    const slow = fitSteps(plan, 0.156); // 11000 × 0.156 = 1716 s: 780 / 1716 of each
    expect(slow).toEqual({
      align: Math.round(1000 * (780 / 1716)),
      instruct: Math.round(10000 * (780 / 1716)),
    });
    expect(slow.align + slow.instruct).toBeLessThanOrEqual(780 / 0.156 + 1);
    expect(fitSteps(demoPlan('tiny'), 100)).toEqual({ align: 6, instruct: 10 }); // no budget: the smoke plan
    expect(fitSteps(plan, 1e6)).toEqual({ align: 1, instruct: 1 }); // never zero steps
    // A stage planned with 0 steps (the default and quick plans skip stage 1) stays skipped.
    expect(fitSteps({ ...plan, align: { ...plan.align, steps: 0 } }, 0.156)).toEqual({
      align: 0,
      instruct: Math.round(10000 * (780 / 1560)),
    });
  });
});

describe('cellTargets', () => {
  it('puts each object’s classes and cell-relative box in its cell, and marks the others empty', () => {
    const layout = {
      imageSize: 64,
      background: {
        kind: 'plain' as const,
        from: [0, 0, 0],
        to: [0, 0, 0],
        angle: 0,
        noise: 0,
        noiseSeed: 1,
      },
      objects: [
        // centre in cell (1, 0) of the 2×2 grid: box 40..56 × 8..24 is 0.25..0.75 of that cell
        {
          shape: 'star',
          colour: 'red',
          size: 'small',
          rgb: [200, 30, 30],
          centre: [48, 16],
          radius: 8,
          box: [40, 8, 56, 24],
        },
      ],
    } as unknown as Parameters<typeof cellTargets>[0];
    const t = cellTargets(layout, 32);
    expect(t.occupied).toEqual([0, 1, 0, 0]);
    expect(t.classes[1]).toEqual([
      COLOUR_NAMES.indexOf('red'),
      SHAPES.indexOf('star'),
      SIZES.indexOf('small'),
    ]);
    expect(t.boxes[1]).toEqual([0.25, 0.25, 0.75, 0.75]);
    expect(t.classes[0]).toEqual([COLOUR_NAMES.length, SHAPES.length, SIZES.length]); // the "empty" classes
    expect(t.boxes[0]).toEqual([0, 0, 0, 0]);
  });
});

describe('defaultDemoWorkers', () => {
  it('two replicas only where every trained stage has batches of ≥ 32 rows and there are two cores', () => {
    const two = availableParallelism() >= 2 ? 2 : 1;
    expect(defaultDemoWorkers(demoPlan('quick'))).toBe(two);
    expect(defaultDemoWorkers(demoPlan('default'))).toBe(two);
    const quick = demoPlan('quick');
    // halves of 16 cost nearly a whole batch: one replica
    expect(defaultDemoWorkers({ ...quick, instruct: { ...quick.instruct, batchSize: 16 } })).toBe(1);
    // a stage with steps and a small batch keeps one replica; a stage of 0 steps does not count
    expect(defaultDemoWorkers({ ...quick, align: { steps: 10, lr: 1e-3, batchSize: 16 } })).toBe(1);
    expect(defaultDemoWorkers({ ...quick, align: { steps: 0, lr: 1e-3, batchSize: 16 } })).toBe(two);
    expect(defaultDemoWorkers(demoPlan('tiny'))).toBe(1);
  });
});
