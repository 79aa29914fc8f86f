// Time-budgeted training: the steps of each stage are planned from measured step times so the run ends within
// a wall-clock budget. The lr schedule is defined over the fraction of the stage done: until `calibrationSteps`
// steps are timed the plan follows every step, then it stays fixed and is re-planned only when the projected end
// drifts from the stage's deadline (a machine that got loaded, or freed). A re-plan re-anchors the fraction at
// the current step, so the lr never jumps; the stage's deadline is a hard stop.
import type { LrSchedule } from '../optim/schedule.js';
import type { BudgetState } from './checkpoint.js';

export interface TimeBudgetOptions {
  /** The whole budget, seconds. */
  seconds: number;
  /** Steps timed before the plan is fixed. */
  calibrationSteps: number;
  /** Seconds kept free for the end (final validation, model save). */
  reserveSeconds: number;
  /** The recipe's planned steps per stage: their ratio splits the budget between stages and shapes each schedule. */
  baseSteps: readonly number[];
}

/** What a budgeted run did with its time (TrainResult.budget). */
export interface BudgetReport {
  seconds: number;
  /** Training seconds used when the run ended. */
  usedSeconds: number;
  /** Optimizer steps done in all stages. */
  steps: number;
  /** The plan once step times settled (or the steps done, when more), summed over the stages this process planned. */
  plannedSteps: number;
  /** Plans changed after calibration because steps ran slower (or faster) than measured. */
  replans: number;
  /** Fraction of the last stage's lr schedule reached (1: it ran to its end). */
  scheduleCompleted: number;
  /** What fell short of the calibrated plan, in words; null when nothing did. */
  shortfall: string | null;
}

/** Recent step times: a change of speed shows in their mean. */
const STEP_WINDOW = 10;

/** Step times since the last change of speed, at most this many: the plan uses their mean (steady under noise). */
const SETTLED_WINDOW = 200;

/** The recent mean must differ from the settled one by this share (and by 3 of its standard errors) to be a change. */
const CHANGE_SHARE = 0.1;

/** Steps done may fall this far short of the settled plan before it is called a shortfall (step-time noise). */
const SHORTFALL_TOLERANCE = 0.05;

/** Drift of the projected end, as a fraction of the stage's time still left, tolerated before re-planning. */
const REPLAN_TOLERANCE = 0.05;

export class TimeBudgetPlanner {
  private state: BudgetState;
  private deadline = 0;
  private stageName = '';
  /** Wall seconds between the last steps' ends, less the validation/checkpoint time inside them. */
  private readonly stepTimes: number[] = [];
  /** Step times since the speed last changed (up to SETTLED_WINDOW): what the plan is made from. */
  private settledTimes: number[] = [];
  private overheadSeconds = 0;
  /** Overhead since the last step ended (taken out of the next interval). */
  private pendingOverhead = 0;
  /** Steps timed when overhead was last added: overhead per step = all of it / these (no sawtooth between passes). */
  private stepsAtOverhead = 0;
  /** The largest overhead between two steps: the projection is that coarse, so drift within it is no reason to re-plan. */
  private largestOverhead = 0;
  private lastEnd = 0;
  private stepsTimed = 0;
  /** Seconds the stage's closing work (its last validation) is expected to take. */
  private endSeconds = 0;
  /** Stages this process planned: largest plan since calibration vs steps done, and whether the deadline cut them. */
  private readonly outcomes: { name: string; planned: number; done: number; cut: boolean }[] = [];
  /**
   * The stage's plan when its step window first filled (warm-up makes the calibrated one an underestimate): the
   * reference a shortfall is measured against. Not the largest plan since: re-plans on noise would inflate it.
   */
  private referencePlan = 0;
  private replanTotal = 0;
  private cut = false;

  constructor(
    readonly opts: TimeBudgetOptions,
    restored?: BudgetState,
  ) {
    this.state = restored ?? TimeBudgetPlanner.stageState(opts.seconds, 0);
  }

  private static stageState(seconds: number, stage: number): BudgetState {
    return {
      seconds,
      stage,
      plan: null,
      calibratedPlan: null,
      anchorStep: 0,
      anchorProgress: 0,
      replans: 0,
    };
  }

  /** The state a checkpoint records (a resumed run continues this stage's plan and schedule position). */
  snapshot(): BudgetState {
    return { ...this.state };
  }

  /** Planned steps of the current stage; null until its first step was timed. */
  get plan(): number | null {
    return this.state.plan;
  }

  /**
   * Starts (or, resumed, continues) stage `si` at `elapsed` training seconds with `done` of its steps done: its
   * deadline is its share of the time left, by the recipe's steps still to do in it and in the later stages.
   */
  startStage(si: number, name: string, done: number, elapsed: number): void {
    if (this.state.stage !== si) this.state = TimeBudgetPlanner.stageState(this.opts.seconds, si);
    this.stageName = name;
    this.stepTimes.length = 0;
    this.settledTimes = [];
    this.overheadSeconds = 0;
    this.pendingOverhead = 0;
    this.stepsAtOverhead = 0;
    this.largestOverhead = 0;
    this.lastEnd = elapsed;
    this.stepsTimed = 0;
    this.cut = false;
    this.referencePlan = this.state.calibratedPlan === null ? 0 : (this.state.plan ?? 0);
    const { baseSteps } = this.opts;
    const left = baseSteps[si] * (1 - this.progress(done));
    const later = baseSteps.slice(si + 1).reduce((a, b) => a + b, 0);
    const remaining = Math.max(0, this.opts.seconds - this.opts.reserveSeconds - elapsed);
    this.deadline = elapsed + (left + later > 0 ? (remaining * left) / (left + later) : 0);
  }

  /** Fraction of the stage's schedule reached after `step` of its updates. */
  progress(step: number): number {
    const { plan, anchorStep, anchorProgress } = this.state;
    if (plan === null) return 0;
    if (plan <= anchorStep) return step >= anchorStep ? 1 : anchorProgress;
    return Math.min(1, anchorProgress + ((step - anchorStep) * (1 - anchorProgress)) / (plan - anchorStep));
  }

  /** The stage's schedule, over the recipe's steps, read at the fraction of the budgeted plan done. */
  schedule(base: LrSchedule, baseSteps: number): LrSchedule {
    return (step) => base(baseSteps * this.progress(step));
  }

  /** Time spent outside steps (validation, checkpoints): spread over all the steps when projecting. */
  addOverhead(seconds: number): void {
    this.overheadSeconds += seconds;
    this.pendingOverhead += seconds;
    this.stepsAtOverhead = Math.max(1, this.stepsTimed);
  }

  /** The expected cost of the stage's closing validation (the last one measured). */
  setEndSeconds(seconds: number): void {
    this.endSeconds = seconds;
  }

  /**
   * After a step: `done` steps of the stage done at `elapsed` training seconds. The step's time is the wall time
   * since the previous step ended (data loading and callbacks included) less the overhead added in between.
   * Returns true when the stage must end now (its plan is done or its deadline passed).
   */
  afterStep(done: number, elapsed: number): boolean {
    // A stage's first step also paid for warm-up (kernel compilation, first allocations): dropped once a second is timed.
    if (this.stepsTimed === 1 && this.stepTimes.length === 1) {
      this.stepTimes.length = 0;
      this.settledTimes = [];
    }
    const stepTime = Math.max(0, elapsed - this.lastEnd - this.pendingOverhead);
    this.stepTimes.push(stepTime);
    this.lastEnd = elapsed;
    this.largestOverhead = Math.max(this.largestOverhead, this.pendingOverhead);
    this.pendingOverhead = 0;
    if (this.stepTimes.length > STEP_WINDOW) this.stepTimes.shift();
    this.settledTimes.push(stepTime);
    if (this.settledTimes.length > SETTLED_WINDOW) this.settledTimes.shift();
    this.stepsTimed++;
    const overheadPerStep = this.stepsAtOverhead > 0 ? this.overheadSeconds / this.stepsAtOverhead : 0;
    // A real change of speed (a loaded or freed machine): the settled window restarts from the recent steps.
    const recent = meanAndError(this.stepTimes);
    if (this.stepTimes.length >= STEP_WINDOW && this.settledTimes.length > STEP_WINDOW) {
      const settled = meanAndError(this.settledTimes);
      const gap = Math.abs(recent.mean - settled.mean);
      // The recent mean's noise, from the settled steps' spread (10 recent times alone estimate it too roughly).
      const recentNoise = settled.error * Math.sqrt(this.settledTimes.length / this.stepTimes.length);
      if (gap > 3 * recentNoise && gap > CHANGE_SHARE * settled.mean) this.settledTimes = [...this.stepTimes];
    }
    // The settled steps' mean plans; whether one more step fits is judged by the slower of it and the last step.
    const { mean: stepMean, error: stepError } = meanAndError(this.settledTimes);
    const perStep = stepMean + overheadPerStep;
    const nextStep = Math.max(perStep, (this.stepTimes.at(-1) ?? 0) + overheadPerStep);
    const available = this.deadline - this.endSeconds - elapsed;
    // One step of margin: step times scatter, and a plan that overruns is cut by the deadline mid-schedule.
    const target = this.deadline - this.endSeconds - perStep;
    const fit = done + Math.max(0, Math.floor((target - elapsed) / perStep));
    const s = this.state;
    if (available < nextStep) {
      // The next step would end past the deadline (steps far slower than planned): end here, the schedule
      // unfinished (plan kept).
      this.cut = s.plan === null || done < s.plan;
      if (s.calibratedPlan === null) s.calibratedPlan = done;
      s.plan ??= done;
      return true;
    }
    if (s.calibratedPlan === null) {
      this.replan(done, fit);
      if (this.stepsTimed >= this.opts.calibrationSteps || fit <= done) s.calibratedPlan = fit;
    } else if (s.plan !== null) {
      const projected = elapsed + (s.plan - done) * perStep;
      const left = this.deadline - elapsed;
      // Capped: a real slowdown (which also widens the spread) must still re-plan at once.
      const noise = Math.min(2 * stepError * (s.plan - done), 2 * REPLAN_TOLERANCE * left);
      const tolerance = Math.max(2 * perStep, REPLAN_TOLERANCE * left, this.largestOverhead, noise);
      // Small changes (one step, or 2 % of the steps left) are left to the plan's margin step and the deadline check.
      if (
        Math.abs(projected - target) > tolerance &&
        Math.abs(fit - s.plan) > Math.max(1, 0.02 * (s.plan - done))
      ) {
        this.replan(done, fit);
        s.replans++;
        this.replanTotal++;
      }
    }
    // The shortfall's reference: the first plan made with a full step window (earlier ones still see warm-up).
    if (s.calibratedPlan !== null && this.stepsTimed >= STEP_WINDOW && this.referencePlan === 0)
      this.referencePlan = s.plan ?? 0;
    return s.plan !== null && done >= s.plan;
  }

  /** A new plan from `done` on, the schedule fraction anchored where it is now. */
  private replan(done: number, plan: number): void {
    const s = this.state;
    s.anchorProgress = this.progress(done);
    s.anchorStep = done;
    s.plan = Math.max(done, plan);
  }

  /** Records how the stage ended (`done` of its steps; early stopping is no shortfall) for the report. */
  endStage(done: number, stoppedEarly = false): void {
    const planned = stoppedEarly ? done : Math.max(this.referencePlan, done);
    this.outcomes.push({ name: this.stageName, planned, done, cut: this.cut });
  }

  /** The report at the end of the run; `lastStageStep`: steps done in the last stage run. */
  report(steps: number, usedSeconds: number, lastStageStep: number): BudgetReport {
    const scheduleCompleted = this.progress(lastStageStep);
    const planned = this.outcomes.reduce((n, o) => n + o.planned, 0);
    const done = this.outcomes.reduce((n, o) => n + o.done, 0);
    const notes: string[] = [];
    const cut = this.outcomes.filter((o) => o.cut).map((o) => o.name);
    if (cut.length) notes.push(`the deadline cut stage ${cut.join(', ')} before its planned end`);
    if (done < planned * (1 - SHORTFALL_TOLERANCE))
      notes.push(
        `steps ran slower than measured: ${planned} planned once step times settled, ${done} done ` +
          `(${planned - done} fewer, ${(100 * (1 - done / planned)).toFixed(0)}%)`,
      );
    if (scheduleCompleted < 1)
      notes.push(`the lr schedule ended at ${(100 * scheduleCompleted).toFixed(0)}% of its course`);
    return {
      seconds: this.opts.seconds,
      usedSeconds,
      steps,
      plannedSteps: planned,
      replans: this.replanTotal,
      scheduleCompleted,
      shortfall: notes.length ? notes.join('; ') : null,
    };
  }
}

/** Mean of step times and its standard error (how far a projection from it can be off by noise alone). */
function meanAndError(times: readonly number[]): { mean: number; error: number } {
  const n = times.length;
  if (n === 0) return { mean: 0, error: 0 };
  const mean = times.reduce((a, b) => a + b, 0) / n;
  const variance = times.reduce((a, t) => a + (t - mean) ** 2, 0) / Math.max(1, n - 1);
  return { mean, error: Math.sqrt(variance / n) };
}
