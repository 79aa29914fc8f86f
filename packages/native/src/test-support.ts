// Shared by the kernel tests: the loaded kernels (or why not) and reproducible inputs.
import type { TestContext } from 'vitest';
import { type NativeKernels, nativeKernelsStatus } from './index.js';

const status = nativeKernelsStatus();

/** The kernels, or null where the addon did not build or load. */
export const kernels: NativeKernels | null = status.available ? status.kernels : null;

/** A describe title naming the kernels, or saying why the tests are skipped. */
export function suiteTitle(what: string): string {
  return kernels
    ? `native ${what} (${kernels.isas.join(', ')})`
    : `native ${what} — SKIPPED: ${!status.available && status.reason}`;
}

/** Deterministic values in [-1, 1) (a 32-bit LCG), so a failure reproduces. */
export function randomArray(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The kernels, or the test is marked skipped with the reason the addon is missing (never a silent pass). */
export function requireKernels(ctx: TestContext): NativeKernels {
  if (!kernels) ctx.skip(`native addon not available: ${!status.available && status.reason}`);
  return kernels as NativeKernels;
}
