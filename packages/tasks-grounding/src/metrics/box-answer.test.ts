import { type AnswerMetric, createRegistry, type tf } from '@vistune/core';
import { ImageTransform } from '@vistune/encoders';
import { describe, expect, it } from 'vitest';
import { register } from '../register.js';

const registry = createRegistry();
register(registry);
// Box metrics never read the tensor, only the geometry.
const processed = { image: [{ tensor: {} as tf.Tensor, transform: ImageTransform.identity(100, 100) }] };
const answer = (prediction: string, reference: string) => ({
  prediction,
  reference,
  question: '',
  record: {},
  processed,
});

describe('box answer metrics', () => {
  it('read both boxes with the codec in the image frame: Acc@0.5 and IoU, a missing box scores 0', () => {
    const acc = registry.createSync('metric', { type: 'box_accuracy', codec: 'shikra' }) as AnswerMetric;
    const iou = registry.createSync('metric', { type: 'box_iou', codec: { type: 'shikra' } }) as AnswerMetric;
    // [0.1,0.1,0.5,0.5] vs [0.1,0.1,0.5,0.3]: IoU = 0.08 / 0.16 = 0.5
    expect(acc.score(answer('[0.100,0.100,0.500,0.300]', 'at [0.100,0.100,0.500,0.500]'))).toBe(1);
    expect(iou.score(answer('[0.100,0.100,0.500,0.300]', '[0.100,0.100,0.500,0.500]'))).toBeCloseTo(0.5, 6);
    expect(acc.score(answer('[0.600,0.600,0.900,0.900]', '[0.100,0.100,0.500,0.500]'))).toBe(0);
    expect(acc.score(answer('somewhere on the left', '[0.100,0.100,0.500,0.500]'))).toBe(0);
    expect(acc.score(answer('[0.1,0.1,0.5,0.5]', 'a red circle'))).toBeUndefined();
    expect(acc.score({ ...answer('[0.1,0.1,0.5,0.5]', '[0.1,0.1,0.5,0.5]'), processed: {} })).toBeUndefined();
  });
});
