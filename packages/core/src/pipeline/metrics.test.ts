import { describe, expect, it } from 'vitest';
import { register } from '../register.js';
import { createRegistry } from '../registry/registry.js';
import { firstNumber, normaliseAnswer, tokenF1, yesNo } from './metrics.js';
import type { AnswerMetric } from './types.js';

const registry = createRegistry();
register(registry);
const metric = (name: string) => registry.createSync('metric', { type: name }) as AnswerMetric;
const answer = (prediction: string, reference: string) => ({
  prediction,
  reference,
  question: '',
  record: {},
  processed: {},
});

describe('answer metrics', () => {
  it('normalise like VQA: case, punctuation, articles, number words', () => {
    expect(normaliseAnswer('The Two red circles.')).toBe('2 red circles');
    expect(firstNumber('there are three of them')).toBe(3);
    expect(firstNumber('none')).toBe(0);
    expect(yesNo('Yes, it is.')).toBe('yes');
    expect(yesNo('maybe')).toBeNull();
  });

  it('score each answer type only where it applies', () => {
    const number = metric('number_accuracy');
    expect(number.score(answer('3', 'three'))).toBe(1);
    expect(number.score(answer('There are 4.', '3'))).toBe(0);
    expect(number.score(answer('red', 'blue'))).toBeUndefined();
    const yn = metric('yes_no_accuracy');
    expect(yn.score(answer('No, it is not.', 'no'))).toBe(1);
    expect(yn.score(answer('yes', 'no'))).toBe(0);
    expect(yn.score(answer('yes', 'a red circle'))).toBeUndefined();
    expect(metric('exact_match').score(answer('A cube!', 'cube'))).toBe(1);
  });

  it('token F1 is SQuAD-style over normalised tokens', () => {
    expect(tokenF1('a red circle on the left', 'red circle')).toBeCloseTo((2 * (2 / 4) * 1) / (2 / 4 + 1));
    expect(tokenF1('blue', 'red circle')).toBe(0);
    expect(tokenF1('', '')).toBe(1);
    expect(metric('token_f1').score(answer('red circle', 'the red circle'))).toBe(1);
  });
});
