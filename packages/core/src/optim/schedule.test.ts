import { describe, expect, it } from 'vitest';
import {
  constantSchedule,
  cosineSchedule,
  linearSchedule,
  scheduleFromConfig,
  warmupStepsFor,
} from './schedule.js';

// Values of HF transformers' schedules: warmup 10, then 100 decay steps (totalSteps 110).
describe('lr schedules (HF lr_lambda semantics)', () => {
  it('cosine with warmup', () => {
    const s = cosineSchedule({ warmupSteps: 10, totalSteps: 110 });
    expect(s(0)).toBe(0);
    expect(s(5)).toBeCloseTo(0.5, 12);
    expect(s(10)).toBeCloseTo(1, 12);
    expect(s(35)).toBeCloseTo(0.5 + Math.SQRT2 / 4, 12); // progress 1/4: (1 + cos(π/4)) / 2
    expect(s(60)).toBeCloseTo(0.5, 12);
    expect(s(85)).toBeCloseTo(0.5 - Math.SQRT2 / 4, 12);
    expect(s(110)).toBeCloseTo(0, 12);
    // HF does not clamp progress: past the end the half-cosine rises again.
    expect(s(120)).toBeCloseTo(0.5 * (1 - Math.cos(0.1 * Math.PI)), 12);
  });

  it('cosine with a warmup ratio rounds the warmup up, and a min lr ratio floors it', () => {
    expect(warmupStepsFor(110, { warmupRatio: 0.03 })).toBe(4); // ceil(3.3)
    expect(warmupStepsFor(110, { warmupSteps: 7, warmupRatio: 0.5 })).toBe(7);
    const s = cosineSchedule({ warmupRatio: 0.03, totalSteps: 110 });
    expect(s(2)).toBeCloseTo(0.5, 12);
    expect(s(4)).toBeCloseTo(1, 12);
    expect(s(57)).toBeCloseTo(0.5, 12); // middle of the 106 decay steps
    const floored = cosineSchedule({ warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 });
    expect(floored(60)).toBeCloseTo(0.55, 12);
    expect(floored(110)).toBeCloseTo(0.1, 12);
  });

  it('linear with warmup and constant', () => {
    const s = linearSchedule({ warmupSteps: 10, totalSteps: 110 });
    expect(s(4)).toBeCloseTo(0.4, 12);
    expect(s(10)).toBe(1);
    expect(s(60)).toBeCloseTo(0.5, 12);
    expect(s(110)).toBe(0);
    expect(s(130)).toBe(0);
    expect(constantSchedule()(0)).toBe(1);
    expect(constantSchedule({ warmupSteps: 4 })(1)).toBe(0.25);
    expect(constantSchedule({ warmupSteps: 4 })(4)).toBe(1);
  });

  it('scheduleFromConfig maps HF lr_scheduler_type names', () => {
    expect(scheduleFromConfig({ type: 'cosine', totalSteps: 110, warmupSteps: 10 })(35)).toBeCloseTo(
      0.8535533905932737,
      12,
    );
    expect(scheduleFromConfig({ type: 'linear', totalSteps: 110, warmupRatio: 0.1 })(11)).toBe(1);
    expect(scheduleFromConfig({ type: 'constant_with_warmup', totalSteps: 100, warmupRatio: 0.1 })(5)).toBe(
      0.5,
    );
    expect(() => scheduleFromConfig({ type: 'poly' as 'linear', totalSteps: 1 })).toThrow(
      /Unknown lr schedule "poly"/,
    );
  });
});
