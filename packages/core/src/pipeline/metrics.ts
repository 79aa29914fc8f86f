// Answer metrics core registers (kind `metric`): exact match after VQA normalisation, and token F1.
import { z } from 'zod';
import type { Registry } from '../registry/types.js';
import type { AnswerMetric, ScoredAnswer } from './types.js';

const ARTICLES = new Set(['a', 'an', 'the']);
const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};

/** VQAv2-style answer normalisation: lowercase, punctuation and articles removed, number words as digits. */
export function normaliseAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/(?<=\d),(?=\d)/g, '')
    .replace(/[^\p{L}\p{N}\s[\],.-]/gu, ' ')
    .replace(/\.(?!\d)/g, ' ')
    .split(/\s+/)
    .filter((w) => w && !ARTICLES.has(w))
    .map((w) => NUMBER_WORDS[w] ?? w)
    .join(' ');
}

/** SQuAD-style token F1 of the normalised answers. */
export function tokenF1(prediction: string, reference: string): number {
  const p = normaliseAnswer(prediction).split(' ').filter(Boolean);
  const r = normaliseAnswer(reference).split(' ').filter(Boolean);
  if (!p.length || !r.length) return p.length === r.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of r) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of p) {
    const n = counts.get(w) ?? 0;
    if (n > 0) {
      common++;
      counts.set(w, n - 1);
    }
  }
  if (!common) return 0;
  const precision = common / p.length;
  const recall = common / r.length;
  return (2 * precision * recall) / (precision + recall);
}

/** The first number of a normalised answer (digits or number words), or null. */
export function firstNumber(text: string): number | null {
  const match = /-?\d+(?:\.\d+)?/.exec(normaliseAnswer(text));
  return match ? Number(match[0]) : null;
}

/** 'yes' / 'no' when the normalised answer starts with one, else null. */
export function yesNo(text: string): 'yes' | 'no' | null {
  const match = /^(yes|no)\b/.exec(normaliseAnswer(text));
  return match ? (match[1] as 'yes' | 'no') : null;
}

/** Adds exact_match, token_f1, number_accuracy and yes_no_accuracy. */
export function registerAnswerMetrics(registry: Registry): void {
  registry.add({
    kind: 'metric',
    name: 'exact_match',
    about: 'Exact match after VQA normalisation (case, punctuation, articles, number words)',
    schema: z.object({}),
    create: (): AnswerMetric => ({
      name: 'exact_match',
      score: (a: ScoredAnswer) => (normaliseAnswer(a.prediction) === normaliseAnswer(a.reference) ? 1 : 0),
    }),
  });
  registry.add({
    kind: 'metric',
    name: 'token_f1',
    about: 'Token F1 of the normalised answer against the reference (free-text answers)',
    schema: z.object({}),
    create: (): AnswerMetric => ({
      name: 'token_f1',
      score: (a: ScoredAnswer) => tokenF1(a.prediction, a.reference),
    }),
  });
  registry.add({
    kind: 'metric',
    name: 'number_accuracy',
    about:
      'Counting / numeric answers: the first number of the answer equals the reference (only where the reference is a number)',
    schema: z.object({}),
    create: (): AnswerMetric => ({
      name: 'number_accuracy',
      score: (a: ScoredAnswer) => {
        const reference = /^-?\d+(\.\d+)?$/.test(normaliseAnswer(a.reference))
          ? firstNumber(a.reference)
          : null;
        if (reference === null) return undefined;
        return firstNumber(a.prediction) === reference ? 1 : 0;
      },
    }),
  });
  registry.add({
    kind: 'metric',
    name: 'yes_no_accuracy',
    about:
      "Yes/no answers: the answer starts with the reference's yes or no (only where the reference is one)",
    schema: z.object({}),
    create: (): AnswerMetric => ({
      name: 'yes_no_accuracy',
      score: (a: ScoredAnswer) => {
        const reference = yesNo(a.reference);
        if (reference === null) return undefined;
        return yesNo(a.prediction) === reference ? 1 : 0;
      },
    }),
  });
}
