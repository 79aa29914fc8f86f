// The wasm backend's float32 BatchMatMul on @vistune/native's SGEMM (AVX-512/AVX2, ~100 GFLOP/s on one core
// against XNNPACK's ~40 in wasm SIMD). The addon reads and writes the wasm heap in place through views, so no
// tensor is copied; shapes it does not cover (general batch broadcasts, other dtypes) go to the wasm kernel.
// The fused AdamW kernel (ops/kernels/adamw.ts) runs its update there too, in float32.
// The package is optional: where it is absent or its addon did not build, nothing changes and the status says why.
import * as tf from '@tensorflow/tfjs-core';
// Types only (erased): the package itself is loaded by dynamic import below, and may be missing at run time.
import type { AddonAttempt, AddonOrigin, NativeKernels, NativeKernelsStatus } from '@vistune/native';
import { setNativeAdamW } from '../ops/kernels/adamw.js';
import { setNativeColumnSum } from '../ops/kernels/column-sum.js';
import { setNativeInt8Product } from '../ops/kernels/int8-product.js';
import { setNativeRotary } from '../ops/kernels/rotary.js';
import { setNativeMatmulPolicy } from '../ops/policy.js';
import { wasmThreads } from '../ops/wasm-threads.js';

export const NATIVE_ENV_VAR = 'VISTUNE_NATIVE';
export const NATIVE_THREADS_ENV_VAR = 'VISTUNE_NATIVE_THREADS';

interface WasmHeapBackend {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

export interface NativeMatmulStatus {
  /** True while the wasm backend's BatchMatMul runs on the native SGEMM. */
  active: boolean;
  /** The kernel's instruction set (avx512, avx2, generic) when active. */
  isa?: string;
  threads?: number;
  /** Why it is not active. */
  reason?: string;
  /** The addon that runs them: "prebuilt (linux-x64, glibc)", "compiled at install" or "VISTUNE_NATIVE_PATH". */
  addon?: { origin: AddonOrigin; label: string; path: string };
  /** Addons tried before (or instead of) it, with why each was passed over. */
  addonsPassedOver?: AddonAttempt[];
}

export interface EnableNativeMatmulOptions {
  /** Threads per product (default: env VISTUNE_NATIVE_THREADS, else the wasm backend's XNNPACK threads, 1 by default; 2 splits each product in halves). */
  threads?: number;
}

const KERNEL = tf.BatchMatMul;
const BACKEND = 'wasm';

let loaded: NativeKernelsStatus | null = null;
let status: NativeMatmulStatus = {
  active: false,
  reason: 'not enabled yet (initBackend enables it on wasm)',
};
let wasmKernel: tf.KernelConfig | null = null;

async function loadNative(): Promise<NativeKernelsStatus> {
  if (loaded) return loaded;
  try {
    const native = await import('@vistune/native');
    loaded = native.nativeKernelsStatus();
  } catch (error) {
    loaded = {
      available: false,
      reason: `@vistune/native is not installed (${error instanceof Error ? error.message.split('\n')[0] : error})`,
      passedOver: [],
    };
  }
  return loaded;
}

function disabledByEnv(): boolean {
  const value = process.env[NATIVE_ENV_VAR]?.trim().toLowerCase();
  return value === '0' || value === 'false' || value === 'off';
}

function threadsFromEnv(fallback: number): number {
  const raw = process.env[NATIVE_THREADS_ENV_VAR]?.trim();
  if (!raw) return fallback;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(
      `Environment variable ${NATIVE_THREADS_ENV_VAR}="${raw}" is not a positive integer: fix or unset it`,
    );
  return threads;
}

/**
 * BatchMatMul as tfjs-backend-wasm defines it (outer dims broadcast, shapes folded to [batch, rows, cols]), on
 * the native SGEMM when each operand's batch is either the output's or 1 (a repeated slice: stride 0).
 */
function nativeBatchMatMul(kernels: NativeKernels, threads: number, fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const [aRank, bRank] = [a.shape.length, b.shape.length];
    const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
    const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
    const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
    const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    if (k !== kB || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return fallback(args); // its errors
    const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batch = tf.util.sizeFromShape(outer);
    if (batch !== Math.max(batchA, batchB)) return fallback(args);
    const backend = args.backend as unknown as WasmHeapBackend;
    const out = backend.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    // Views only after makeOutput: allocating can grow the heap, which detaches views taken before.
    kernels.sgemm({
      a: backend.typedArrayFromHeap(a),
      b: backend.typedArrayFromHeap(b),
      c: backend.typedArrayFromHeap(out),
      m,
      n,
      k,
      transposeA,
      transposeB,
      batch,
      strideA: batchA === 1 ? 0 : m * k,
      strideB: batchB === 1 ? 0 : k * n,
      threads,
    });
    return out;
  };
}

/**
 * Puts the wasm backend's float32 BatchMatMul on the native SGEMM (and the op policy's wasm entry on the
 * choices that suit it), the fused AdamW kernel on the native update (~5× the JS loop: 1 vs 5.8 ns per
 * parameter on tiny), and the rotary and column-sum kernels on vectorised twins that give the JS loops' bits.
 * A no-op returning the reason where @vistune/native is missing, did not build, or VISTUNE_NATIVE=0. Safe to
 * call again (e.g. with other threads); disableNativeMatmul() undoes it.
 */
export async function enableNativeMatmul(opts: EnableNativeMatmulOptions = {}): Promise<NativeMatmulStatus> {
  if (disabledByEnv()) {
    disableNativeMatmul();
    status = { active: false, reason: `disabled by ${NATIVE_ENV_VAR}=${process.env[NATIVE_ENV_VAR]}` };
    return status;
  }
  const threads = opts.threads ?? threadsFromEnv(Math.max(1, wasmThreads()));
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`enableNativeMatmul: option threads must be a positive integer, got ${threads}`);
  const native = await loadNative();
  if (!native.available) {
    status = { active: false, reason: native.reason, addonsPassedOver: native.passedOver };
    return status;
  }
  const current = tf.getKernel(KERNEL, BACKEND);
  if (!current) {
    status = { active: false, reason: 'tfjs-backend-wasm has not registered its kernels (import it first)' };
    return status;
  }
  wasmKernel ??= current;
  tf.unregisterKernel(KERNEL, BACKEND);
  tf.registerKernel({
    ...wasmKernel, // its setupFunc binds the wasm function the fallback calls
    kernelFunc: nativeBatchMatMul(native.kernels, threads, wasmKernel.kernelFunc),
  });
  setNativeMatmulPolicy(BACKEND, true);
  const kernels = native.kernels;
  setNativeAdamW((inputs, outputs, attrs) => kernels.adamw({ ...inputs, ...outputs, ...attrs, threads }));
  setNativeRotary((args) => kernels.rotary(args));
  setNativeColumnSum((args) => kernels.columnSum(args));
  setNativeInt8Product((args) => kernels.int8Product({ ...args, threads }));
  const { origin, label, path } = native.kernels;
  status = {
    active: true,
    isa: kernels.isa,
    threads,
    addon: { origin, label, path },
    addonsPassedOver: native.passedOver,
  };
  return status;
}

/** Restores tfjs-backend-wasm's own BatchMatMul and the wasm op policy (A/B runs, tests). */
export function disableNativeMatmul(reason = 'disabled by disableNativeMatmul()'): void {
  if (!wasmKernel) return;
  tf.unregisterKernel(KERNEL, BACKEND);
  tf.registerKernel(wasmKernel);
  wasmKernel = null;
  setNativeMatmulPolicy(BACKEND, false);
  setNativeAdamW(null);
  setNativeRotary(null);
  setNativeColumnSum(null);
  setNativeInt8Product(null);
  status = { active: false, reason };
}

/** Whether the native matmul is active, its kernel and threads, or why not. */
export function nativeMatmulStatus(): NativeMatmulStatus {
  return { ...status };
}

/** One line for reports: "matmul and AdamW on native kernels (avx512, 1 thread)" or why they run on wasm. */
export function describeNativeMatmul(s: NativeMatmulStatus = status): string {
  return s.active
    ? `matmul and AdamW on native kernels (${s.isa}, ${s.threads} thread${s.threads === 1 ? '' : 's'})`
    : `matmul on wasm (native off: ${s.reason})`;
}
