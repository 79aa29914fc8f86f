import { describe, expect, it } from 'vitest';
import {
  buildStoppingCriteria,
  eosCriterion,
  findStopString,
  maxNewTokensCriterion,
  stopStringCriterion,
} from './stopping.js';

// A toy decoder: token id i is the i-th string.
const pieces = ['Hel', 'lo', ' ##', '#', ' end', '</s>', 'x'];
const decode = (ids: readonly number[]) => ids.map((id) => pieces[id]).join('');

describe('maxNewTokensCriterion', () => {
  it('stops at the limit', () => {
    const criterion = maxNewTokensCriterion(3);
    expect(criterion.check([0, 1])).toBeNull();
    expect(criterion.check([0, 1, 2])).toEqual({ type: 'max_new_tokens', maxNewTokens: 3 });
    expect(() => maxNewTokensCriterion(0)).toThrow(/positive integer/);
  });
});

describe('eosCriterion', () => {
  it('stops when the last token is any EOS id', () => {
    const criterion = eosCriterion([5, 6]);
    expect(criterion.check([])).toBeNull();
    expect(criterion.check([5, 0])).toBeNull();
    expect(criterion.check([0, 6])).toEqual({ type: 'eos', tokenId: 6 });
  });
});

describe('stop strings', () => {
  it('finds the earliest stop string, first listed on ties', () => {
    expect(findStopString('a STOP b END', ['END', 'STOP'])).toEqual({ stopString: 'STOP', index: 2 });
    expect(findStopString('abc', ['bc', 'b'])).toEqual({ stopString: 'bc', index: 1 });
    expect(findStopString('abc', ['z'])).toBeNull();
  });

  it('matches a stop string spread over tokens and trims the text before it', () => {
    const criterion = stopStringCriterion(['###'], decode);
    expect(criterion.check([0, 1, 2])).toBeNull(); // "Hello ##"
    expect(criterion.check([0, 1, 2, 3])).toEqual({
      type: 'stop_string',
      stopString: '###',
      textBeforeStop: 'Hello ',
    });
  });

  it('matches a stop string that ends inside the last token', () => {
    const criterion = stopStringCriterion(['Hello e'], decode);
    expect(criterion.check([0, 1, 4])).toEqual({
      type: 'stop_string',
      stopString: 'Hello e',
      textBeforeStop: '',
    });
  });
});

describe('buildStoppingCriteria', () => {
  it('reports EOS before the length limit and needs decode for stop strings', () => {
    const criteria = buildStoppingCriteria({
      maxNewTokens: 2,
      eosTokenIds: [5],
      stopStrings: ['end'],
      decode,
    });
    expect(criteria.check([0])).toBeNull();
    expect(criteria.check([0, 5])).toEqual({ type: 'eos', tokenId: 5 });
    expect(criteria.check([0, 1])).toEqual({ type: 'max_new_tokens', maxNewTokens: 2 });
    expect(criteria.check([4])).toEqual({ type: 'stop_string', stopString: 'end', textBeforeStop: ' ' });
    expect(() => buildStoppingCriteria({ stopStrings: ['x'] })).toThrow(/decode function/);
  });
});
