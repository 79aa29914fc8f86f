import * as tf from '@tensorflow/tfjs-core';
import { nameMatcher } from '../nn/module.js';
import { constantSchedule, type LrSchedule } from './schedule.js';

/** HF Trainer's default no-decay set (biases and norm weights), as globs on dotted names. */
export const NO_DECAY_PATTERNS: readonly string[] = ['*bias', '*norm*'];

export interface ParamGroupOptions {
  /** Globs on parameter names (`*` spans dots); a parameter joins the first group that matches. */
  patterns: readonly string[];
  /** Base lr of the group (scaled by the schedule); default the optimizer's lr. */
  lr?: number;
  /** Default the optimizer's weightDecay. */
  weightDecay?: number;
}

export interface ParamGroup {
  readonly lr: number;
  readonly weightDecay: number;
  readonly names: readonly string[];
}

export interface OptimizerOptions {
  lr: number;
  weightDecay?: number;
  /** Multiplier of every group's lr by step; default constant 1. */
  schedule?: LrSchedule;
  /** Parameters matching none of these form a last group with the optimizer's lr and weightDecay. */
  groups?: readonly ParamGroupOptions[];
}

interface ParamEntry {
  readonly variable: tf.Variable;
  readonly group: number;
}

const STEP_KEY = 'step';

/**
 * Optimizer over named parameters. State (per-parameter buffers, created on a parameter's first update, so
 * frozen ones cost nothing) lives in tf.Variables updated in place; state()/loadState() round-trip it exactly.
 */
export abstract class Optimizer {
  readonly groups: readonly ParamGroup[];
  private readonly params = new Map<string, ParamEntry>();
  private readonly buffers = new Map<string, tf.Variable>();
  private readonly schedule: LrSchedule;
  private updates = 0;

  /** Names of the per-parameter buffers, as torch calls them (`exp_avg`, `momentum_buffer`). */
  protected abstract readonly slotNames: readonly string[];

  /** One parameter's update; runs inside tf.tidy. `step` counts from 1 (bias correction). */
  protected abstract update(
    param: tf.Variable,
    grad: tf.Tensor,
    slots: readonly tf.Variable[],
    lr: number,
    weightDecay: number,
    step: number,
  ): void;

  constructor(params: readonly [string, tf.Variable][], opts: OptimizerOptions) {
    const specs = opts.groups ?? [];
    const matchers = specs.map((g) => nameMatcher(g.patterns));
    const names: string[][] = [...specs, null].map(() => []);
    for (const [name, variable] of params) {
      if (this.params.has(name)) throw new Error(`Optimizer: parameter "${name}" is listed twice`);
      const found = matchers.findIndex((m) => m(name));
      const group = found === -1 ? specs.length : found;
      names[group].push(name);
      this.params.set(name, { variable, group });
    }
    const baseDecay = opts.weightDecay ?? 0;
    this.groups = [
      ...specs.map((g, i) => ({
        lr: g.lr ?? opts.lr,
        weightDecay: g.weightDecay ?? baseDecay,
        names: names[i],
      })),
      { lr: opts.lr, weightDecay: baseDecay, names: names[specs.length] },
    ];
    this.schedule = opts.schedule ?? constantSchedule();
  }

  /** Updates done so far (restored by loadState). */
  get stepCount(): number {
    return this.updates;
  }

  /** Lr the next step() applies to a group (default: the first). */
  currentLr(group = 0): number {
    return this.groups[group].lr * this.schedule(this.updates);
  }

  /**
   * One update of every trainable parameter that has a gradient; gradients are read, not disposed.
   * Parameters without a gradient (or frozen) are left untouched.
   */
  step(grads: ReadonlyMap<string, tf.Tensor>): void {
    const factor = this.schedule(this.updates);
    const t = this.updates + 1;
    for (const [name, grad] of grads) {
      const entry = this.params.get(name);
      if (!entry)
        throw new Error(`Optimizer.step: gradient for "${name}", which is not a parameter of this optimizer`);
      if (!entry.variable.trainable) continue; // frozen params never move, even if handed a gradient
      if (!tf.util.arraysEqual(grad.shape, entry.variable.shape)) {
        throw new Error(
          `Optimizer.step: gradient of "${name}" has shape [${grad.shape}], parameter is [${entry.variable.shape}]`,
        );
      }
      const slots = this.slotNames.map((slot) => this.buffer(name, slot, entry.variable));
      const group = this.groups[entry.group];
      tf.tidy(() => this.update(entry.variable, grad, slots, group.lr * factor, group.weightDecay, t));
    }
    this.updates = t;
  }

  /** Copies of every buffer as `<param>.<slot>`, plus `step` (int32 scalar). The caller disposes them. */
  state(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [key, v] of this.buffers) out.set(key, tf.clone(v));
    out.set(STEP_KEY, tf.scalar(this.updates, 'int32'));
    return out;
  }

  /** Restores state() output (tensors are copied, not kept). Unknown or misshaped entries are errors. */
  loadState(
    state: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>,
    opts: { source?: string } = {},
  ): void {
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const where = opts.source ? ` in ${opts.source}` : '';
    const step = entries.get(STEP_KEY);
    if (step?.size !== 1) throw new Error(`Optimizer.loadState: no scalar "${STEP_KEY}" entry${where}`);
    const problems: string[] = [];
    const targets: [string, string, ParamEntry, tf.Tensor][] = [];
    for (const [key, t] of entries) {
      if (key === STEP_KEY) continue;
      const slot = this.slotNames.find((s) => key.endsWith(`.${s}`));
      const name = slot && key.slice(0, -(slot.length + 1));
      const entry = name ? this.params.get(name) : undefined;
      if (!slot || !name || !entry)
        problems.push(`${key}: not a buffer of this optimizer (slots: ${this.slotNames})`);
      else if (!tf.util.arraysEqual(t.shape, entry.variable.shape)) {
        problems.push(`${key}: expected [${entry.variable.shape}], got [${t.shape}]`);
      } else targets.push([name, slot, entry, t]);
    }
    if (problems.length)
      throw new Error(`Optimizer state does not match${where}:\n  ${problems.join('\n  ')}`);
    for (const [name, slot, entry, t] of targets) {
      const buf = this.buffer(name, slot, entry.variable);
      tf.tidy(() => buf.assign(t.dtype === 'float32' ? t : tf.cast(t, 'float32')));
    }
    this.updates = step.dataSync()[0];
  }

  dispose(): void {
    for (const v of this.buffers.values()) v.dispose();
    this.buffers.clear();
  }

  private buffer(name: string, slot: string, like: tf.Variable): tf.Variable {
    const key = `${name}.${slot}`;
    let v = this.buffers.get(key);
    if (!v) {
      const zeros = tf.zerosLike(like);
      v = tf.variable(zeros, false);
      zeros.dispose();
      this.buffers.set(key, v);
    }
    return v;
  }
}
