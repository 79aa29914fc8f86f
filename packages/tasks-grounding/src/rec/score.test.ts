import { describe, expect, it } from 'vitest';
import { ShikraCodec } from '../codecs/shikra.js';
import { scoreRecPredictions } from './score.js';

const codec = new ShikraCodec({ frame: 'square' });

describe('scoreRecPredictions', () => {
  it('pairs the n-th prediction of a record with its n-th truth turn and scores box turns only', () => {
    // 100×50 image: the square frame pads 25 px above, so y = (v·100 − 25).
    const records = [
      {
        id: 'a',
        width: 100,
        height: 50,
        truth: [
          { kind: 'vqa_color', answer: 'red' },
          { kind: 'grounding', box: [10, 5, 50, 45] },
        ],
      },
      { id: 'b', imageSize: 64, truth: [{ kind: 'grounding', box: [0, 0, 32, 32] }] },
      { id: 'c', imageSize: 64, truth: [{ kind: 'region_caption', box: [0, 0, 8, 8] }] },
      { id: 'd', imageSize: 64, truth: [{ kind: 'grounding', box: [0, 0, 8, 8] }] },
    ];
    const predictions = [
      { id: 'a', prediction: 'red' },
      { id: 'a', prediction: 'there [0.100,0.300,0.500,0.700]' }, // = [10, 5, 50, 45]: IoU 1
      { id: 'b', prediction: '[0.000,0.000,0.500,0.250]' }, // [0,0,32,16]: IoU 0.5, a hit with >=
      { id: 'c', prediction: 'not scored' },
    ];
    const score = scoreRecPredictions(records, predictions, codec);
    expect(score).toMatchObject({ total: 3, correct: 2, missing: 1, unanswered: 1 });
    expect(score.meanIou).toBeCloseTo((1 + 0.5) / 3, 6);
    expect(scoreRecPredictions(records, predictions, codec, { comparison: '>' }).correct).toBe(1);
  });

  it('a record without image size is an error naming it', () => {
    expect(() =>
      scoreRecPredictions(
        [{ id: 'x', truth: [{ kind: 'grounding', box: [0, 0, 1, 1] }] }],
        [{ id: 'x', prediction: '[0.1,0.1,0.2,0.2]' }],
        codec,
      ),
    ).toThrow(/record x has neither imageSize nor width\/height/);
  });
});
