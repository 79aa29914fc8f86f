// @vistune/native: the project's own SGEMM (src/sgemm.cc), loaded from the addon scripts/build-addon.mjs built.
// Loading never throws: where the addon is missing or does not load, loadNativeKernels() returns null and
// nativeKernelsStatus() says why.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

export interface NativeKernels {
  /** The kernel sgemm runs by default. */
  isa: NativeIsa;
  /** Every kernel this CPU can run. */
  isas: readonly NativeIsa[];
  /** The addon file. */
  path: string;
  /** Throws a RangeError naming the argument when shapes, strides and array lengths disagree. */
  sgemm(args: SgemmArgs): void;
  /** torch.optim.AdamW's update in float32, one vectorised pass; throws a RangeError on mismatched arrays. */
  adamw(args: AdamWArgs): void;
}

export type NativeKernelsStatus =
  | { available: true; kernels: NativeKernels }
  | { available: false; reason: string };

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
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON_PATH = join(packageRoot, 'build', 'Release', 'vistune_native.node');
const BUILD_STATUS_PATH = join(packageRoot, 'build', 'vistune-build.json');

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

function wrap(addon: Addon): NativeKernels {
  const best = addon.bestIsa;
  const isas = NATIVE_ISAS.slice(0, best + 1);
  const fallbackIsa = defaultIsa(best);
  return {
    isa: NATIVE_ISAS[fallbackIsa],
    isas,
    path: ADDON_PATH,
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
  };
}

/** Why the build left no addon, from the status file scripts/build-addon.mjs writes. */
function buildFailure(): string {
  try {
    const status = JSON.parse(readFileSync(BUILD_STATUS_PATH, 'utf8')) as { reason?: string | null };
    if (status.reason) return `not built: ${status.reason}`;
  } catch {}
  return `not built (${ADDON_PATH} is missing): run \`pnpm --filter @vistune/native build\` with a C++ compiler, make and Python 3 installed`;
}

let status: NativeKernelsStatus | null = null;

/** Loads the addon once; the result (kernels, or the reason there are none) is kept for the process. */
export function nativeKernelsStatus(): NativeKernelsStatus {
  if (status) return status;
  if (!existsSync(ADDON_PATH)) {
    status = { available: false, reason: buildFailure() };
    return status;
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    status = { available: true, kernels: wrap(addon) };
  } catch (error) {
    status = {
      available: false,
      reason: `${ADDON_PATH} did not load: ${error instanceof Error ? error.message : String(error)}; rebuild it with \`pnpm --filter @vistune/native build\``,
    };
  }
  return status;
}

/** The native kernels, or null where the addon did not build or load (nativeKernelsStatus() says why). */
export function loadNativeKernels(): NativeKernels | null {
  const s = nativeKernelsStatus();
  return s.available ? s.kernels : null;
}
