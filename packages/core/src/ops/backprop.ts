// Reverse-mode gradients that free memory as they go. tfjs's engine.gradients keeps every intermediate
// gradient and every saved activation until the whole backward pass ends, so its peak is the forward's saved
// activations plus a gradient for each of them. This walks the same tape but frees a node's saved tensors and
// its output gradients as soon as the node is done, and frees at once what nodes off the x → y path saved (a
// frozen vision tower's activations), so the peak is about the forward's saved activations alone.
import * as tf from '@tensorflow/tfjs-core';

/** A tfjs tape node (engine internals, tfjs-core 4.x). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** The nodes on a path from some x to y, with inputs pruned to those that depend on an x (as tfjs does). */
function nodesFromXToY(tape: readonly TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({
      ...n,
      inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))),
    }));
}

/** Gradients keyed by tensor id, counting the ids each gradient tensor serves (gradients may alias). */
class GradientMap {
  private readonly byId = new Map<number, tf.Tensor>();
  private readonly uses = new Map<tf.Tensor, number>();

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }

  /** Adds g to the gradient of `id` (as tfjs: a new sum, the old one freed unless still used). */
  accumulate(id: number, g: tf.Tensor): void {
    const current = this.byId.get(id);
    if (current === undefined) {
      this.set(id, g);
      return;
    }
    const sum = tf.add(current, g);
    this.unset(id);
    this.set(id, sum);
    this.freeIfUnused(current);
    this.freeIfUnused(g);
  }

  /** Forgets the gradient of `id`; frees it unless another id still uses it or it is in `keep`. */
  drop(id: number, keep: ReadonlySet<tf.Tensor>): void {
    const g = this.byId.get(id);
    if (g === undefined) return;
    this.unset(id);
    if (!keep.has(g)) this.freeIfUnused(g);
  }

  private set(id: number, g: tf.Tensor): void {
    this.byId.set(id, g);
    this.uses.set(g, (this.uses.get(g) ?? 0) + 1);
  }

  private unset(id: number): void {
    const g = this.byId.get(id);
    if (g === undefined) return;
    this.byId.delete(id);
    const n = (this.uses.get(g) ?? 1) - 1;
    if (n > 0) this.uses.set(g, n);
    else this.uses.delete(g);
  }

  private freeIfUnused(g: tf.Tensor): void {
    if (!this.uses.has(g)) g.dispose();
  }
}

/**
 * tf.variableGrads(f, vars) for trainable `vars` with early freeing (see the file comment): the loss and
 * the gradient of each variable by name (variables the loss does not reach get none).
 */
export function variableGradsFreeing(
  f: () => tf.Scalar,
  vars: readonly tf.Variable[],
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth !== 0) {
    // Inside another gradient computation (higher-order): the outer tape needs everything, so use tfjs's.
    const { value, grads } = tf.variableGrads(f, [...vars]);
    return { value, grads: Object.fromEntries(Object.entries(grads).filter(([, g]) => g != null)) };
  }
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor) || y.rank !== 0) {
    throw new Error(
      `variableGradsFreeing: f must return a scalar tensor, got rank ${(y as tf.Tensor)?.rank}`,
    );
  }
  const tape = engine.state.activeTape ?? [];
  engine.state.activeTape = null;
  try {
    const path = nodesFromXToY(tape, vars, y);
    const onPath = new Set(path.map((n) => n.id));
    for (const node of tape) if (!onPath.has(node.id)) tf.dispose(node.saved ?? []); // frozen parts, dead ends
    const grads = tf.tidy(() => {
      const map = new GradientMap();
      map.accumulate(y.id, tf.onesLike(y));
      for (let i = path.length - 1; i >= 0; i--) {
        const node = path[i];
        if (!node.gradient)
          throw new Error(`Cannot compute gradient: no gradient function for ${node.kernelName}`);
        const inputGrads = node.gradient(node.outputs.map((o) => map.get(o.id) ?? null));
        const computed: [tf.Tensor, tf.Tensor][] = [];
        for (const [name, x] of Object.entries(node.inputs)) {
          const gradOf = inputGrads[name];
          if (!gradOf) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}`);
          const dx = tf.tidy(gradOf);
          if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
            throw new Error(
              `Gradient of ${node.kernelName} input '${name}' is ${dx.dtype} [${dx.shape}], expected float32 [${x.shape}]`,
            );
          }
          computed.push([x, dx]);
        }
        // The node is done: its outputs' gradients and its saved activations are no longer needed.
        const fresh = new Set(computed.map(([, dx]) => dx));
        for (const o of node.outputs) map.drop(o.id, fresh);
        tf.dispose(node.saved ?? []);
        for (const [x, dx] of computed) map.accumulate(x.id, dx);
      }
      const out: Record<string, tf.Tensor> = {};
      for (const v of vars) {
        const g = map.get(v.id);
        if (g) out[v.name] = g;
      }
      return out;
    });
    return { value: y as tf.Scalar, grads };
  } finally {
    for (const node of tape) tf.dispose(node.saved ?? []);
  }
}
