// Wall-clock timing of synchronous tfjs work (every value read back, so lazy backends finish too).
import * as tf from '@tensorflow/tfjs-core';

export interface Timing {
  /** Median over the timed repetitions, in milliseconds. */
  medianMs: number;
  minMs: number;
  reps: number;
}

/** Runs f once to warm up (kernel setup, XNNPACK operators), then `reps` times inside tidy; reads every result. */
export function timeIt(f: () => tf.TensorContainer, reps: number): Timing {
  const once = () =>
    tf.tidy(() => {
      const out = f();
      for (const t of flattenTensors(out)) t.dataSync();
      return undefined;
    });
  once();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0], reps };
}

function flattenTensors(c: tf.TensorContainer): tf.Tensor[] {
  if (c instanceof tf.Tensor) return [c];
  if (Array.isArray(c)) return c.flatMap((x) => flattenTensors(x));
  if (c != null && typeof c === 'object') return Object.values(c).flatMap((x) => flattenTensors(x as tf.TensorContainer));
  return [];
}
