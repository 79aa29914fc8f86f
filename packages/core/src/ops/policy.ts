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
   * wasm attention fwd+bwd measured: per-slice 10 vs batched 16 ms at [4,4,64,64], 130 vs 924 ms at [1,8,512,64];
   * below 64³ the extra kernels cost more than they save.
   */
  perSliceMinWork: number;
  /**
   * Keep Wᵀ of linear weights that are not changing (frozen variables, or any variable outside a gradient
   * tape) instead of transposing per call: wasm decode measured 14 ms → 0.08 ms for a 2048×512 linear at one
   * token (the transpose and XNNPACK's repacking of a fresh operand dominate). Costs one copy per weight.
   */
  cacheTransposedWeights: boolean;
  /**
   * Use the op layer's JS kernels (ops/kernels: cross-entropy from softmax, embedding scatter-add), which read
   * and write the backend's memory directly; only wasm and cpu have them registered.
   */
  jsKernels: boolean;
  /**
   * Trained linears with out ≥ 4 × rows (LM heads) as (W·xᵀ)ᵀ with a vocabulary-blocked dx (matmul.ts): wasm
   * packs the right operand of every product, and Wᵀ of a 49152 × 576 head costs a 0.7 s transpose.
   */
  wideLinear: boolean;
  /**
   * Attention whose scores [B·Hkv, rep·T, S] would hold at least this many elements runs chunked (attention.ts:
   * query × key blocks with an online softmax; memory linear in S instead of the saved S² probabilities).
   */
  chunkedAttentionMinScores: number;
  /** Query and key block length of the chunked attention. */
  attentionBlock: number;
}

/** Chunked attention from 2²⁴ scores (64 MB per layer in float32), in blocks of 512: see docs/performance.md. */
const CHUNKED_ATTENTION = { chunkedAttentionMinScores: 2 ** 24, attentionBlock: 512 };

const NATIVE: OpPolicy = {
  explicitTranspose: false,
  perSliceMinWork: Number.POSITIVE_INFINITY,
  cacheTransposedWeights: false,
  jsKernels: false,
  wideLinear: false,
  ...CHUNKED_ATTENTION,
};

const DEFAULTS: Record<string, OpPolicy> = {
  wasm: {
    explicitTranspose: true,
    perSliceMinWork: 64 * 64 * 64,
    cacheTransposedWeights: true,
    jsKernels: true,
    wideLinear: true,
    ...CHUNKED_ATTENTION,
  },
  // cpu's JS matMul reads transposed operands by stride: flags measured as fast as explicit transposes, or faster
  cpu: {
    explicitTranspose: false,
    perSliceMinWork: Number.POSITIVE_INFINITY,
    cacheTransposedWeights: false,
    jsKernels: true,
    wideLinear: false,
    ...CHUNKED_ATTENTION,
  },
};

/**
 * wasm with BatchMatMul on the native SGEMM (backend/native.ts): it reads transposed operands while packing
 * and runs batched products in one call at full speed, so the XNNPACK workarounds above only add passes.
 */
const NATIVE_MATMUL: Partial<OpPolicy> = {
  explicitTranspose: false,
  perSliceMinWork: Number.POSITIVE_INFINITY,
  cacheTransposedWeights: false,
  wideLinear: false,
};

const overrides = new Map<string, Partial<OpPolicy>>();
const nativeMatmulBackends = new Set<string>();

/** The policy for the active backend (or the one named). */
export function opPolicy(backend: string = tf.getBackend()): OpPolicy {
  const native = nativeMatmulBackends.has(backend) ? NATIVE_MATMUL : undefined;
  return { ...(DEFAULTS[backend] ?? NATIVE), ...native, ...overrides.get(backend) };
}

/** Called by backend/native.ts when it puts (or takes) a backend's matMuls on (off) the native SGEMM. */
export function setNativeMatmulPolicy(backend: string, active: boolean): void {
  if (active) nativeMatmulBackends.add(backend);
  else nativeMatmulBackends.delete(backend);
}

/** Overrides parts of a backend's policy (benchmarks, experiments); pass null to restore the defaults. */
export function setOpPolicy(backend: string, policy: Partial<OpPolicy> | null): void {
  if (policy == null) overrides.delete(backend);
  else overrides.set(backend, { ...overrides.get(backend), ...policy });
}
