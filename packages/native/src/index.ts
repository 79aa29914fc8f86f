// @vistune/native: the project's own SGEMM (src/sgemm.cc), loaded from the addon scripts/build-addon.mjs compiled
// or the one prebuilt for this platform (src/load.ts picks). Loading never throws: where no addon loads,
// loadNativeKernels() returns null and nativeKernelsStatus() says why.
import {
  type AddonAttempt,
  type AddonOrigin,
  describeAttempts,
  type LoadOptions,
  loadAddon,
} from './load.js';

export {
  type AddonAttempt,
  type AddonCandidate,
  type AddonOrigin,
  addonCandidates,
  describeAttempts,
  type LoadOptions,
  type LocateOptions,
  loadAddon,
  NATIVE_PATH_ENV_VAR,
  PREBUILD_COMMAND,
} from './load.js';

/** Instruction sets of the kernel, best last (the addon's numbering). */
export const NATIVE_ISAS = ['generic', 'avx2', 'avx512'] as const;
export type NativeIsa = (typeof NATIVE_ISAS)[number];
export const NATIVE_ISA_ENV_VAR = 'VISTUNE_NATIVE_ISA';

/** C[s] = op(A[s]) · op(B[s]) for s < batch, row-major, every matrix dense in its slice. */
export interface SgemmArgs {
  /** op(A) is m × k; A is stored k × m when transposeA. */
  a: Float32Array;
  /** op(B) is k × n; B is stored n × k when transposeB. */
  b: Float32Array;
  /** m × n per slice, overwritten. */
  c: Float32Array;
  m: number;
  n: number;
  k: number;
  transposeA?: boolean;
  transposeB?: boolean;
  /** Slices (default 1). */
  batch?: number;
  /** Floats between slices; default the slice size, 0 reuses one slice for every batch entry (broadcast). */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Kernel to run (default: the best this CPU has, or VISTUNE_NATIVE_ISA); one the CPU lacks is an error. */
  isa?: NativeIsa;
  /** Threads to split the work over (default 1; 2 splits slices, columns or rows in halves). */
  threads?: number;
}

/** One torch.optim.AdamW step of a parameter: new p, m, v into the three result arrays (all the same length). */
export interface AdamWArgs {
  param: Float32Array;
  grad: Float32Array;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
  /** Results; none may overlap an input or another result. */
  paramOut: Float32Array;
  expAvgOut: Float32Array;
  expAvgSqOut: Float32Array;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Update count from 1 (bias correction). */
  step: number;
  isa?: NativeIsa;
  /** Threads to split the buffer over (default 1; buffers under 64 K floats run on one). */
  threads?: number;
}

/** The rotary embedding (HF rotate_half layout) of x [batch, heads, positions, dim] into out, in float64 rounded once. */
export interface RotaryArgs {
  x: Float32Array;
  /** [angleBatches, 1, positions, dim], each half of dim repeating the same dim / 2 angles. */
  cos: Float32Array;
  sin: Float32Array;
  /** Same length as x; must not overlap an input. */
  out: Float32Array;
  batch: number;
  heads: number;
  positions: number;
  /** Even. */
  dim: number;
  /** 1 (shared by the batch) or batch. */
  angleBatches: number;
  /** 1: x·cos + rotate_half(x)·sin; −1: its adjoint (the gradient). */
  sign: 1 | -1;
  isa?: NativeIsa;
}

/** out[j] = Σ_r x[r·dim + j] over a row-major [rows, dim] x, summed in row order in float64. */
export interface ColumnSumArgs {
  x: Float32Array;
  out: Float32Array;
  rows: number;
  dim: number;
  isa?: NativeIsa;
}

/**
 * A weight-only int8 product: out[r·cols + j] = scales[j] · Σ_i x[r·depth + i] · q[j·depth + i], summed in float32.
 * q holds cols rows of depth int8 values: an Int8Array, or the Int32Array a tfjs int32 tensor packs them into.
 */
export interface Int8ProductArgs {
  x: Float32Array;
  q: Int8Array | Int32Array;
  scales: Float32Array;
  out: Float32Array;
  rows: number;
  cols: number;
  depth: number;
  isa?: NativeIsa;
  /** 2 splits the columns between this thread and the helper thread (large products only; default 1). */
  threads?: number;
}

export interface NativeKernels {
  /** The kernel sgemm runs by default. */
  isa: NativeIsa;
  /** Every kernel this CPU can run. */
  isas: readonly NativeIsa[];
  /** The addon file. */
  path: string;
  /** Where it came from: VISTUNE_NATIVE_PATH, compiled at install, or prebuilt in the package. */
  origin: AddonOrigin;
  /** How reports name it: "prebuilt (linux-x64, glibc)", "compiled at install", "VISTUNE_NATIVE_PATH". */
  label: string;
  /** Throws a RangeError naming the argument when shapes, strides and array lengths disagree. */
  sgemm(args: SgemmArgs): void;
  /** torch.optim.AdamW's update in float32, one vectorised pass; throws a RangeError on mismatched arrays. */
  adamw(args: AdamWArgs): void;
  /** core's rotary kernel, vectorised, the same bits; throws a RangeError on mismatched arrays. */
  rotary(args: RotaryArgs): void;
  /** core's column-sum kernel, vectorised, the same bits; throws a RangeError on mismatched arrays. */
  columnSum(args: ColumnSumArgs): void;
  /** Weight-only int8 product (inference); throws a RangeError on mismatched arrays. */
  int8Product(args: Int8ProductArgs): void;
}

/** The kernels or why there are none; passedOver lists the addons tried before (or instead), with reasons. */
export type NativeKernelsStatus =
  | { available: true; kernels: NativeKernels; passedOver: AddonAttempt[] }
  | { available: false; reason: string; passedOver: AddonAttempt[] };

interface Addon {
  bestIsa: number;
  sgemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    transposeA: number,
    transposeB: number,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
    isa: number,
    threads: number,
  ): void;
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    pOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    beta1: number,
    beta2: number,
    eps: number,
    stepSize: number,
    sqrtBias2: number,
    decay: number,
    isa: number,
    threads: number,
  ): void;
  rotary(
    x: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    out: Float32Array,
    batch: number,
    heads: number,
    positions: number,
    dim: number,
    angleBatches: number,
    sign: number,
    isa: number,
  ): void;
  columnSum(x: Float32Array, out: Float32Array, rows: number, dim: number, isa: number): void;
  /** Absent from addons built before it existed. */
  int8Product?(
    x: Float32Array,
    q: Int8Array | Int32Array,
    scales: Float32Array,
    out: Float32Array,
    rows: number,
    cols: number,
    depth: number,
    isa: number,
    threads: number,
  ): void;
}

function defaultIsa(best: number): number {
  const asked = process.env[NATIVE_ISA_ENV_VAR]?.trim().toLowerCase();
  if (!asked) return best;
  const index = (NATIVE_ISAS as readonly string[]).indexOf(asked);
  if (index < 0 || index > best) {
    throw new Error(
      `Environment variable ${NATIVE_ISA_ENV_VAR}="${asked}" is not one of ${NATIVE_ISAS.slice(0, best + 1).join(', ')} (what this CPU runs): fix or unset it`,
    );
  }
  return index;
}

function wrap(addon: Addon, found: { path: string; origin: AddonOrigin; label: string }): NativeKernels {
  const best = addon.bestIsa;
  const isas = NATIVE_ISAS.slice(0, best + 1);
  const fallbackIsa = defaultIsa(best);
  return {
    isa: NATIVE_ISAS[fallbackIsa],
    isas,
    path: found.path,
    origin: found.origin,
    label: found.label,
    sgemm(args) {
      const { m, n, k } = args;
      const isa = args.isa === undefined ? fallbackIsa : NATIVE_ISAS.indexOf(args.isa);
      addon.sgemm(
        args.a,
        args.b,
        args.c,
        m,
        n,
        k,
        args.transposeA ? 1 : 0,
        args.transposeB ? 1 : 0,
        args.batch ?? 1,
        args.strideA ?? m * k,
        args.strideB ?? k * n,
        args.strideC ?? m * n,
        isa < 0 ? Number.NaN : isa,
        args.threads ?? 1,
      );
    },
    adamw(args) {
      const { lr, beta1, beta2, step } = args;
      if (!(Number.isInteger(step) && step >= 1))
        throw new RangeError(
          `@vistune/native adamw: step must be an integer ≥ 1 (updates so far + 1), got ${step}`,
        );
      const isa = args.isa === undefined ? fallbackIsa : NATIVE_ISAS.indexOf(args.isa);
      addon.adamw(
        args.param,
        args.grad,
        args.expAvg,
        args.expAvgSq,
        args.paramOut,
        args.expAvgOut,
        args.expAvgSqOut,
        beta1,
        beta2,
        args.eps,
        lr / (1 - beta1 ** step),
        Math.sqrt(1 - beta2 ** step),
        1 - lr * args.weightDecay,
        isa < 0 ? Number.NaN : isa,
        args.threads ?? 1,
      );
    },
    rotary(args) {
      const isa = args.isa === undefined ? fallbackIsa : NATIVE_ISAS.indexOf(args.isa);
      addon.rotary(
        args.x,
        args.cos,
        args.sin,
        args.out,
        args.batch,
        args.heads,
        args.positions,
        args.dim,
        args.angleBatches,
        args.sign,
        isa < 0 ? Number.NaN : isa,
      );
    },
    columnSum(args) {
      const isa = args.isa === undefined ? fallbackIsa : NATIVE_ISAS.indexOf(args.isa);
      addon.columnSum(args.x, args.out, args.rows, args.dim, isa < 0 ? Number.NaN : isa);
    },
    int8Product(args) {
      if (!addon.int8Product)
        throw new Error(
          `@vistune/native: the addon at ${found.path} predates int8Product: rebuild it (pnpm --filter @vistune/native build)`,
        );
      const isa = args.isa === undefined ? fallbackIsa : NATIVE_ISAS.indexOf(args.isa);
      addon.int8Product(
        args.x,
        args.q,
        args.scales,
        args.out,
        args.rows,
        args.cols,
        args.depth,
        isa < 0 ? Number.NaN : isa,
        args.threads ?? 1,
      );
    },
  };
}

/** Loads the addon now (nothing cached): where options.requireAddon or packageRoot are given, from there. */
export function resolveNativeKernels(options: LoadOptions = {}): NativeKernelsStatus {
  const found = loadAddon<Addon>(options);
  if (!found.addon)
    return {
      available: false,
      reason: `no native addon loaded: ${describeAttempts(found.passedOver)}`,
      passedOver: found.passedOver,
    };
  return { available: true, kernels: wrap(found.addon, found.candidate), passedOver: found.passedOver };
}

let status: NativeKernelsStatus | null = null;

/** Loads the addon once; the result (kernels, or the reason there are none) is kept for the process. */
export function nativeKernelsStatus(): NativeKernelsStatus {
  status ??= resolveNativeKernels();
  return status;
}

/** The native kernels, or null where no addon loaded (nativeKernelsStatus() says why). */
export function loadNativeKernels(): NativeKernels | null {
  const s = nativeKernelsStatus();
  return s.available ? s.kernels : null;
}
