// Every backend-dependent choice of the op layer lives here, keyed by the active tfjs backend.
import * as tf from '@tensorflow/tfjs-core';

export interface OpPolicy {
  /**
   * Run matMul transposes as an explicit tf.transpose + plain matMul, in forward and gradients.
   * wasm: transpose flags leave XNNPACK for a generic loop, ~10× slower (measured 2.8 vs 41 GFLOP/s at 1024²).
   */
  explicitTranspose: boolean;
  /**
   * Batched matMuls whose per-slice work M·K·N is at least this run as one 2D matMul per slice (wasm: only
   * 2D products reach XNNPACK; its batched kernel runs ~3 GFLOP/s). Infinity: always the batched kernel.
   */
  perSliceMinWork: number;
}

const NATIVE: OpPolicy = { explicitTranspose: false, perSliceMinWork: Number.POSITIVE_INFINITY };

const DEFAULTS: Record<string, OpPolicy> = {
  wasm: { explicitTranspose: true, perSliceMinWork: 128 * 64 * 128 },
  cpu: { explicitTranspose: true, perSliceMinWork: Number.POSITIVE_INFINITY },
};

const overrides = new Map<string, Partial<OpPolicy>>();

/** The policy for the active backend (or the one named). */
export function opPolicy(backend: string = tf.getBackend()): OpPolicy {
  return { ...(DEFAULTS[backend] ?? NATIVE), ...overrides.get(backend) };
}

/** Overrides parts of a backend's policy (benchmarks, experiments); pass null to restore the defaults. */
export function setOpPolicy(backend: string, policy: Partial<OpPolicy> | null): void {
  if (policy == null) overrides.delete(backend);
  else overrides.set(backend, { ...overrides.get(backend), ...policy });
}
