import { describe, expect, it } from 'vitest';
import { type EvalPrediction, scoreByKind, withQuestionTemplates } from './evaluate.js';

function prediction(question: string, kind = '', scores: Record<string, number> = {}): EvalPrediction {
  return { id: question, turn: 1, kind, question, prediction: '', reference: '', exactMatch: false, scores };
}

describe('eval grouping and scores', () => {
  it('groups records without a kind by question template (frequent words kept, the rest as …)', () => {
    const questions = [
      'How many red circles are there?',
      'How many blue squares are there?',
      'How many green crosses are there?',
      'What colour is the triangle?',
      'What colour is the square?',
    ];
    const grouped = withQuestionTemplates(questions.map((q) => prediction(q)));
    expect(grouped.map((p) => p.kind)).toEqual([
      'how many … are there?',
      'how many … are there?',
      'how many … are there?',
      'what colour is the …?',
      'what colour is the …?',
    ]);
    expect(withQuestionTemplates([prediction('Where is it?', 'grounding')])[0].kind).toBe('grounding');
  });

  it('averages each metric over the answers it applied to', () => {
    const scores = scoreByKind([
      prediction('a', 'count', { number_accuracy: 1 }),
      prediction('b', 'count', { number_accuracy: 0 }),
      prediction('c', 'color', { token_f1: 0.5 }),
    ]);
    const overall = scores.at(-1)!;
    expect(overall.metrics.number_accuracy).toEqual({ mean: 0.5, n: 2 });
    expect(overall.metrics.token_f1).toEqual({ mean: 0.5, n: 1 });
    expect(scores.find((s) => s.kind === 'color')?.metrics.number_accuracy).toBeUndefined();
  });
});
