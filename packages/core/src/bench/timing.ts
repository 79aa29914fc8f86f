// Wall-clock timing of synchronous tfjs work (every value read back, so lazy backends finish too).
import * as tf from '@tensorflow/tfjs-core';

export interface Timing {
  /** Median over the timed repetitions, in milliseconds. */
  medianMs: number;
  minMs: number;
  reps: number;
}

function runOnce(f: () => tf.TensorContainer): number {
  const t0 = performance.now();
  tf.tidy(() => {
    for (const t of flattenTensors(f())) t.dataSync();
    return undefined;
  });
  return performance.now() - t0;
}

function summary(times: number[]): Timing {
  const sorted = [...times].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], reps: sorted.length };
}

/** Runs f once to warm up (kernel setup, XNNPACK operators), then `reps` times inside tidy; reads every result. */
export function timeIt(f: () => tf.TensorContainer, reps: number): Timing {
  runOnce(f);
  return summary(Array.from({ length: reps }, () => runOnce(f)));
}

/**
 * Times several variants fairly: all warmed up twice (V8 optimises the cpu backend's JS kernels after a
 * few calls), then measured interleaved so that load from other processes hits each alike.
 */
export function timeInterleaved(variants: (() => tf.TensorContainer)[], reps: number): Timing[] {
  for (let i = 0; i < 2; i++) for (const f of variants) runOnce(f);
  const times = variants.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, f] of variants.entries()) times[i].push(runOnce(f));
  }
  return times.map(summary);
}

function flattenTensors(c: tf.TensorContainer): tf.Tensor[] {
  if (c instanceof tf.Tensor) return [c];
  if (Array.isArray(c)) return c.flatMap((x) => flattenTensors(x));
  if (c != null && typeof c === 'object')
    return Object.values(c).flatMap((x) => flattenTensors(x as tf.TensorContainer));
  return [];
}
