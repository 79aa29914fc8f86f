import { describe, expect, it } from 'vitest';
import { shapeAccuracy, shapeAccuracySchema, shapeWord } from './metric.js';

const metric = shapeAccuracy(shapeAccuracySchema.parse({}));
const answer = (prediction: string, reference: string) => ({
  prediction,
  reference,
  question: '',
  record: {},
  processed: {},
});

describe('shape_accuracy', () => {
  it('finds the first shape word, in any case, plural or in a sentence', () => {
    const shapes = shapeAccuracySchema.parse({}).shapes;
    expect(shapeWord('It is a Cube.', shapes)).toBe('cube');
    expect(shapeWord('two cones and a sphere', shapes)).toBe('cone');
    expect(shapeWord('red', shapes)).toBeUndefined();
  });

  it('scores 1 when the answer names the reference shape, 0 otherwise', () => {
    expect(metric.score(answer('cube', 'cube'))).toBe(1);
    expect(metric.score(answer('It is a torus.', 'torus'))).toBe(1);
    expect(metric.score(answer('sphere', 'cube'))).toBe(0);
    expect(metric.score(answer('', 'cone'))).toBe(0);
  });

  it('does not score answers whose reference names no shape (colour questions)', () => {
    expect(metric.score(answer('cube', 'red'))).toBeUndefined();
  });

  it('takes its own shape list', () => {
    const custom = shapeAccuracy(shapeAccuracySchema.parse({ shapes: ['chair', 'table'] }));
    expect(custom.score(answer('a chair', 'chair'))).toBe(1);
    expect(custom.score(answer('cube', 'cube'))).toBeUndefined();
  });
});
