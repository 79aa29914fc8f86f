import * as tf from '@tensorflow/tfjs-core';
import { loadedWeightProblem } from '../io/weight-checks.js';

/** Glob on dotted names: `*` matches any run of characters (dots included), `?` one character. */
export function nameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      ),
  );
  return (name) => res.some((r) => r.test(name));
}

let parameterCounter = 0;

/**
 * Base of every network piece. Parameters are tf.Variables named by their HF-style dotted path
 * (`model.layers.0.self_attn.q_proj.weight`), resolved from the module tree.
 */
export class Module {
  private readonly ownParams = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();
  // Modules start in eval mode, as HF from_pretrained leaves them; a trainer calls train().
  private isTraining = false;

  /** Whether dropout-like layers are active. */
  get training(): boolean {
    return this.isTraining;
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    this.isTraining = mode;
    for (const c of this.children.values()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Registers a parameter; the tensor is wrapped in a variable that this module owns. */
  protected param<R extends tf.Rank>(name: string, init: tf.Tensor<R>, trainable = true): tf.Variable<R> {
    if (this.ownParams.has(name) || this.children.has(name))
      throw new Error(`Duplicate parameter name "${name}"`);
    const v = tf.variable(init, trainable, `p${parameterCounter++}_${name}`);
    init.dispose();
    this.ownParams.set(name, v);
    return v as tf.Variable<R>;
  }

  /** Registers a child module under a path segment (a number for list items, as HF's ModuleList). */
  protected module<M extends Module>(name: string | number, child: M): M {
    const key = String(name);
    if (this.ownParams.has(key) || this.children.has(key)) throw new Error(`Duplicate module name "${key}"`);
    this.children.set(key, child);
    return child;
  }

  /** Unregisters a child module (not disposed: the caller owns it now); an unknown name is an error. */
  protected removeModule(name: string | number): Module {
    const key = String(name);
    const child = this.children.get(key);
    if (!child) throw new Error(`No child module named "${key}"`);
    this.children.delete(key);
    return child;
  }

  /** Children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every parameter with its dotted name, depth-first in registration order. */
  namedParameters(prefix = ''): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, p]) => p);
  }

  trainableParameters(): [string, tf.Variable][] {
    return this.namedParameters().filter(([, p]) => p.trainable);
  }

  /** Sets `trainable` on every parameter whose name matches one of the glob patterns; returns how many matched. */
  setTrainable(patterns: readonly string[], trainable: boolean): number {
    const match = nameMatcher(patterns);
    let n = 0;
    for (const [name, p] of this.namedParameters()) {
      if (match(name)) {
        p.trainable = trainable;
        n++;
      }
    }
    return n;
  }

  /** Freezes everything, then unfreezes the parameters matching the patterns. */
  trainOnly(patterns: readonly string[]): number {
    for (const p of this.parameters()) p.trainable = false;
    return this.setTrainable(patterns, true);
  }

  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    return this.namedParameters()
      .filter(([, p]) => !opts.trainableOnly || p.trainable)
      .reduce((s, [, p]) => s + p.size, 0);
  }

  /** Live views of the parameters by name (not copies: do not dispose them). */
  stateDict(): Map<string, tf.Variable> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies tensors into parameters by name. Shapes must match exactly. With strict (default) a missing or
   * unexpected name is an error listing them all; otherwise they are returned. A float parameter given an
   * integer tensor, or (unless allowNonfinite, or inside allowNonfiniteWeights) NaN/Inf values, is an error
   * naming the tensor and its file; nothing is copied then.
   */
  loadStateDict(
    weights: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>,
    opts: { strict?: boolean; source?: string; allowNonfinite?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const entries = weights instanceof Map ? weights : new Map(Object.entries(weights));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !own.has(k));
    const where = opts.source ? ` in ${opts.source}` : '';
    const wrongShape: string[] = [];
    for (const [k, v] of own) {
      const t = entries.get(k);
      if (t && !tf.util.arraysEqual(t.shape, v.shape))
        wrongShape.push(`${k}: expected [${v.shape}], got [${t.shape}]`);
    }
    if (wrongShape.length) throw new Error(`Wrongly shaped tensors${where}:\n  ${wrongShape.join('\n  ')}`);
    const badValues: string[] = [];
    for (const [k, v] of own) {
      const t = entries.get(k);
      const problem = t && loadedWeightProblem(k, v.dtype, t, opts);
      if (problem) badValues.push(problem);
    }
    if (badValues.length) throw new Error(`Invalid weights${where}:\n  ${badValues.join('\n  ')}`);
    if ((opts.strict ?? true) && (missing.length || unexpected.length)) {
      throw new Error(
        `State dict does not match the model${where}:` +
          (missing.length ? `\n  missing: ${missing.join(', ')}` : '') +
          (unexpected.length ? `\n  unexpected: ${unexpected.join(', ')}` : ''),
      );
    }
    for (const [k, v] of own) {
      const t = entries.get(k);
      if (t) tf.tidy(() => v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype)));
    }
    return { missing, unexpected };
  }

  dispose(): void {
    for (const p of this.ownParams.values()) p.dispose();
    for (const c of this.children.values()) c.dispose();
    this.ownParams.clear();
    this.children.clear();
  }
}
