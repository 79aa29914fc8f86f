// The time-budget planner on a simulated clock: steps fill the stage's share of the budget, a slowdown after
// calibration re-plans (the run still ends by its deadline, the shortfall stated), the lr never jumps, stages
// split the time by the recipe's steps, and a restored state continues the same schedule.
import { describe, expect, it } from 'vitest';
import { Rng } from '../nn/rng.js';
import { cosineSchedule } from '../optim/schedule.js';
import { TimeBudgetPlanner } from './budget.js';

interface Simulated {
  steps: number;
  end: number;
  lrs: number[];
  /** Largest change of the schedule fraction at the current step made by a plan update (0: never jumps). */
  maxJump: number;
  planner: TimeBudgetPlanner;
}

/** Runs one stage on a clock where step k takes stepTime(k) seconds; lr read as the optimizer does (before the update). */
function simulate(
  planner: TimeBudgetPlanner,
  stepTime: (k: number) => number,
  opts: { si?: number; start?: number; baseSteps?: number; overheadEvery?: number } = {},
): Simulated {
  const baseSteps = opts.baseSteps ?? 100;
  const schedule = planner.schedule(cosineSchedule({ totalSteps: baseSteps, warmupSteps: 5 }), baseSteps);
  let clock = opts.start ?? 0;
  planner.startStage(opts.si ?? 0, `stage${opts.si ?? 0}`, 0, clock);
  const lrs: number[] = [];
  let done = 0;
  let maxJump = 0;
  for (;;) {
    lrs.push(schedule(done));
    clock += stepTime(done);
    done++;
    const before = planner.progress(done);
    const ends = planner.afterStep(done, clock);
    if (!ends) maxJump = Math.max(maxJump, Math.abs(planner.progress(done) - before));
    if (ends) break;
    if (opts.overheadEvery && done % opts.overheadEvery === 0) {
      clock += 1; // a validation pass of 1 s, after the step as the trainer runs it
      planner.addOverhead(1);
    }
    if (done > 10_000) throw new Error('runaway plan');
  }
  planner.endStage(done);
  return { steps: done, end: clock, lrs, maxJump, planner };
}

const planner = (seconds: number, baseSteps: number[] = [100], reserveSeconds = 0) =>
  new TimeBudgetPlanner({ seconds, calibrationSteps: 3, reserveSeconds, baseSteps });

describe('TimeBudgetPlanner', () => {
  it('fills a 10 s budget at 0.1 s a step: ~100 steps, ends by the deadline, schedule run to its end', () => {
    const run = simulate(planner(10), () => 0.1);
    expect(run.steps).toBeGreaterThanOrEqual(97);
    expect(run.steps).toBeLessThanOrEqual(100);
    expect(run.end).toBeLessThanOrEqual(10 + 1e-9);
    expect(run.planner.progress(run.steps)).toBe(1);
    const report = run.planner.report(run.steps, run.end, run.steps);
    expect(report).toMatchObject({ replans: 0, scheduleCompleted: 1, shortfall: null });
    expect(report.plannedSteps).toBe(run.steps);
    // The lr follows the recipe's cosine over the budgeted steps: warmup of 5/100 of them, then down to ~0.
    expect(Math.max(...run.lrs)).toBeCloseTo(1, 2);
    expect(run.lrs.at(-1)).toBeLessThan(0.01);
  });

  it('re-plans when steps get 3× slower after 30 steps: ends on time, lr continuous, shortfall stated', () => {
    const run = simulate(planner(10), (k) => (k < 30 ? 0.1 : 0.3));
    // 30 steps in 3 s, then 7 s at 0.3 s a step: 23 more.
    expect(run.steps).toBeGreaterThanOrEqual(50);
    expect(run.steps).toBeLessThanOrEqual(54);
    expect(run.end).toBeLessThanOrEqual(10 + 0.3);
    const report = run.planner.report(run.steps, run.end, run.steps);
    expect(report.replans).toBeGreaterThanOrEqual(1);
    expect(report.plannedSteps).toBeGreaterThanOrEqual(97);
    expect(report.shortfall).toMatch(/slower than measured: \d+ planned once step times settled, \d+ done/);
    expect(report.scheduleCompleted).toBeGreaterThan(0.95); // the estimate lags the slowdown: measured 0.966
    // A re-plan re-anchors the schedule where it is: the fraction done never jumps, the lr falls smoothly
    // (steps of the cosine tail squeezed into the ~20 steps left after the slowdown: ~π/2 × 0.8 / 20).
    expect(run.maxJump).toBeLessThan(1e-12);
    for (let k = 8; k < run.lrs.length; k++) expect(Math.abs(run.lrs[k] - run.lrs[k - 1])).toBeLessThan(0.08);
  });

  it('a noisy machine (steps 0.05–0.15 s at random) re-plans rarely and still ends on time', () => {
    const rng = new Rng(11);
    const run = simulate(planner(20), () => 0.05 + 0.1 * rng.nextFloat());
    expect(run.end).toBeLessThanOrEqual(20 + 0.15);
    expect(run.steps).toBeGreaterThan(170); // ~20 s / 0.1 s
    const report = run.planner.report(run.steps, run.end, run.steps);
    expect(report.replans).toBeLessThanOrEqual(35); // measured 29 (one per ~7 steps); without the noise term: 78
    expect(report.scheduleCompleted).toBeGreaterThan(0.97);
  });

  it('a long noisy run (~4700 steps of 0.16 s ± 40 %, as a 13-minute training run measured) states no false shortfall', () => {
    const rng = new Rng(5);
    const run = simulate(planner(780), () => 0.16 * (0.6 + 0.8 * rng.nextFloat()), { baseSteps: 4000 });
    expect(run.end).toBeLessThanOrEqual(780 + 0.3);
    expect(run.steps).toBeGreaterThan(4700);
    const report = run.planner.report(run.steps, run.end, run.steps);
    // Noise alone is no slowdown: the plan must not swing so far that the run reports fewer steps than planned.
    expect(report.shortfall).toBeNull();
    expect(report.replans).toBeLessThanOrEqual(40);
  });

  it('a deadline overrun (a step far slower than planned) ends the stage at once and says the schedule was cut', () => {
    const run = simulate(planner(10), (k) => (k < 50 ? 0.1 : 6));
    expect(run.steps).toBe(51);
    const report = run.planner.report(run.steps, run.end, run.steps);
    expect(report.shortfall).toMatch(/deadline cut stage stage0/);
    expect(report.scheduleCompleted).toBeLessThan(1);
  });

  it('spreads validation overhead over the steps instead of re-planning around it', () => {
    const run = simulate(planner(20), () => 0.1, { overheadEvery: 25 });
    // 20 s = n × 0.1 + floor(n / 25) × 1 → at most 148 steps (150 would take 21 s).
    expect(run.steps).toBeGreaterThanOrEqual(138);
    expect(run.steps).toBeLessThanOrEqual(148);
    expect(run.end).toBeLessThanOrEqual(20 + 1);
    expect(run.planner.report(run.steps, run.end, run.steps).replans).toBeLessThanOrEqual(2);
  });

  it('splits the budget between stages by their recipe steps (1:3) and keeps a reserve', () => {
    const p = planner(22, [50, 150], 2);
    const first = simulate(p, () => 0.1, { si: 0, baseSteps: 50 });
    expect(first.end).toBeCloseTo(5, 0); // (22 − 2) × 1/4
    const second = simulate(p, () => 0.1, { si: 1, start: first.end, baseSteps: 150 });
    expect(second.end).toBeLessThanOrEqual(20 + 1e-9);
    expect(second.end).toBeGreaterThan(19.5);
  });

  it('a restored state continues the schedule where the snapshot left it', () => {
    const p = planner(10);
    const schedule = p.schedule((x) => x, 100);
    p.startStage(0, 's', 0, 0);
    for (let k = 1; k <= 20; k++) p.afterStep(k, k * 0.1);
    const snapshot = p.snapshot();
    const restored = new TimeBudgetPlanner(p.opts, snapshot);
    const again = restored.schedule((x) => x, 100);
    for (const k of [20, 30, 60]) expect(again(k)).toBe(schedule(k));
    expect(restored.plan).toBe(p.plan);
  });
});
