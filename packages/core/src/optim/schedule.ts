// Learning-rate schedules as torch LambdaLR multipliers, with HF transformers' formulas. `step` is the number
// of optimizer updates already done, so update k (0-based) runs at base lr × schedule(k), as in HF Trainer
// (hence the first update with warmup runs at lr 0).

/** Multiplier of each parameter group's base lr at a step. */
export type LrSchedule = (step: number) => number;

export interface WarmupOptions {
  /** Warmup length in updates; wins over warmupRatio when > 0. */
  warmupSteps?: number;
  /** Fraction of totalSteps, rounded up as HF TrainingArguments.get_warmup_steps. */
  warmupRatio?: number;
}

/** HF get_warmup_steps: explicit steps if > 0, else ceil(totalSteps × ratio). */
export function warmupStepsFor(totalSteps: number, opts: WarmupOptions): number {
  if (opts.warmupSteps && opts.warmupSteps > 0) return opts.warmupSteps;
  return Math.ceil(totalSteps * (opts.warmupRatio ?? 0));
}

function warmupFactor(step: number, warmup: number): number {
  return step / Math.max(1, warmup);
}

/** get_constant_schedule(_with_warmup): linear ramp over warmupSteps, then 1. */
export function constantSchedule(opts: { warmupSteps?: number } = {}): LrSchedule {
  const warmup = opts.warmupSteps ?? 0;
  return (step) => (step < warmup ? warmupFactor(step, warmup) : 1);
}

/** get_linear_schedule_with_warmup: ramp up, then linear decay to 0 at totalSteps. */
export function linearSchedule(opts: WarmupOptions & { totalSteps: number }): LrSchedule {
  const warmup = warmupStepsFor(opts.totalSteps, opts);
  return (step) => {
    if (step < warmup) return warmupFactor(step, warmup);
    return Math.max(0, (opts.totalSteps - step) / Math.max(1, opts.totalSteps - warmup));
  };
}

/**
 * get_cosine_schedule_with_warmup: ramp up, then 0.5·(1 + cos(π·2·numCycles·progress)); numCycles 0.5 is
 * one half-cosine down to 0 at totalSteps. minLrRatio floors it (HF cosine_with_min_lr's min_lr_rate).
 */
export function cosineSchedule(
  opts: WarmupOptions & { totalSteps: number; numCycles?: number; minLrRatio?: number },
): LrSchedule {
  const warmup = warmupStepsFor(opts.totalSteps, opts);
  const cycles = opts.numCycles ?? 0.5;
  const floor = opts.minLrRatio ?? 0;
  return (step) => {
    if (step < warmup) return warmupFactor(step, warmup);
    const progress = (step - warmup) / Math.max(1, opts.totalSteps - warmup);
    const cosine = 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress));
    return Math.max(0, cosine * (1 - floor) + floor);
  };
}

/** HF `lr_scheduler_type` names. */
export type ScheduleName = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine' | 'cosine_with_min_lr';

export interface ScheduleConfig extends WarmupOptions {
  type: ScheduleName;
  totalSteps: number;
  minLrRatio?: number;
}

/** Builds a schedule from trainer-config style settings. */
export function scheduleFromConfig(cfg: ScheduleConfig): LrSchedule {
  switch (cfg.type) {
    case 'constant':
      return constantSchedule();
    case 'constant_with_warmup':
      return constantSchedule({ warmupSteps: warmupStepsFor(cfg.totalSteps, cfg) });
    case 'linear':
      return linearSchedule(cfg);
    case 'cosine':
      return cosineSchedule({ ...cfg, minLrRatio: 0 });
    case 'cosine_with_min_lr':
      return cosineSchedule(cfg);
    default:
      throw new Error(
        `Unknown lr schedule "${(cfg as { type: string }).type}": use constant, constant_with_warmup, linear, cosine or cosine_with_min_lr`,
      );
  }
}
