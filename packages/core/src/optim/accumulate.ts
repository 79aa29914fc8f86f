import * as tf from '@tensorflow/tfjs-core';

/**
 * Sums gradients over micro-batches, then hands back their weighted mean. With weight = each micro-batch's
 * share of the loss denominator (e.g. its count of labelled tokens) the mean equals the big-batch gradient.
 */
export class GradientAccumulator {
  private readonly sums = new Map<string, tf.Tensor>();
  private totalWeight = 0;
  private micro = 0;
  /**
   * The weight of the one micro-batch whose gradients `sums` holds unscaled, or null once they are Σ wᵢ·gradsᵢ:
   * with a single micro-batch the mean is its gradients, so mean() skips a multiply and a divide per parameter.
   */
  private unscaledWeight: number | null = null;

  /** Micro-batches added since the last mean(). */
  get count(): number {
    return this.micro;
  }

  /** Adds weight · grads; the grads are read, not disposed. */
  add(grads: ReadonlyMap<string, tf.Tensor>, weight = 1): void {
    this.addSums(grads, weight, weight, 1);
  }

  /**
   * Adds sums already weighted elsewhere (Σ wᵢ·gradsᵢ of `microBatches` micro-batches whose weights add up
   * to `totalWeight`), e.g. a data-parallel worker's share of a step; the sums are read, not disposed.
   */
  addWeightedSum(sums: ReadonlyMap<string, tf.Tensor>, totalWeight: number, microBatches: number): void {
    this.addSums(sums, 1, totalWeight, microBatches);
  }

  private addSums(
    grads: ReadonlyMap<string, tf.Tensor>,
    weight: number,
    totalWeight: number,
    microBatches: number,
  ): void {
    if (!(totalWeight > 0))
      throw new Error(`GradientAccumulator.add: weight must be > 0, got ${totalWeight}`);
    if (this.micro > 0) {
      const missing = [...this.sums.keys()].filter((k) => !grads.has(k));
      const extra = [...grads.keys()].filter((k) => !this.sums.has(k));
      if (missing.length || extra.length) {
        throw new Error(
          `GradientAccumulator.add: micro-batch gradients name different parameters (missing: ${missing}; new: ${extra})`,
        );
      }
    }
    if (this.micro === 0 && microBatches === 1 && weight === totalWeight) {
      for (const [name, g] of grads) this.sums.set(name, tf.clone(g));
      this.unscaledWeight = weight;
      this.totalWeight = totalWeight;
      this.micro = 1;
      return;
    }
    this.scaleHeldGradients();
    for (const [name, g] of grads) {
      const prev = this.sums.get(name);
      const next = tf.tidy(() => {
        const scaled = weight === 1 ? g : tf.mul(g, weight);
        return prev ? tf.add(prev, scaled) : tf.clone(scaled);
      });
      prev?.dispose();
      this.sums.set(name, next);
    }
    this.totalWeight += totalWeight;
    this.micro += microBatches;
  }

  /** Turns held unscaled gradients into weight · gradients (what `sums` holds from a second micro-batch on). */
  private scaleHeldGradients(): void {
    const weight = this.unscaledWeight;
    if (weight === null) return;
    this.unscaledWeight = null;
    if (weight === 1) return;
    for (const [name, g] of this.sums) {
      this.sums.set(name, tf.mul(g, weight));
      g.dispose();
    }
  }

  /** The weighted mean as new tensors (caller disposes); resets the accumulator. */
  mean(): Map<string, tf.Tensor> {
    if (this.micro === 0)
      throw new Error('GradientAccumulator.mean: nothing was added since the last mean()');
    const out = new Map<string, tf.Tensor>();
    if (this.unscaledWeight !== null) {
      // One micro-batch: its gradients are the mean.
      for (const [name, g] of this.sums) out.set(name, tf.clone(g));
      this.reset();
      return out;
    }
    for (const [name, sum] of this.sums)
      out.set(
        name,
        tf.tidy(() => tf.div(sum, this.totalWeight)),
      );
    this.reset();
    return out;
  }

  /** Hands over the unnormalised sums Σ wᵢ·gradsᵢ with their total weight (the caller disposes them); resets. */
  takeSums(): { sums: Map<string, tf.Tensor>; totalWeight: number; microBatches: number } {
    this.scaleHeldGradients();
    const taken = { sums: new Map(this.sums), totalWeight: this.totalWeight, microBatches: this.micro };
    this.sums.clear();
    this.reset();
    return taken;
  }

  /** Drops the running sums (e.g. after a skipped step). */
  reset(): void {
    for (const s of this.sums.values()) s.dispose();
    this.sums.clear();
    this.totalWeight = 0;
    this.micro = 0;
    this.unscaledWeight = null;
  }

  dispose(): void {
    this.reset();
  }
}
