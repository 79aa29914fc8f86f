// Backend selection. Order, when nothing is asked for: tfjs-node-gpu → webgpu (a hardware adapter only) →
// tfjs-node → wasm → cpu, i.e. a GPU first when one is usable. tfjs-webgpu has no synchronous read in Node, so
// training, generation and bench await theirs (docs/gpu.md).
import * as tf from '@tensorflow/tfjs-core';
import { registerAllGradients } from './gradients.js';
import { describeNativeMatmul, disableNativeMatmul, enableNativeMatmul } from './native.js';
import { AUTOMATIC_ORDER, PROVIDERS, type ProviderSpec, providersFor } from './providers.js';
import type { BackendInfo, BackendName, BackendProvider, BackendStatus } from './types.js';

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
export const BACKEND_ENV_VAR = 'VISTUNE_BACKEND';

export interface InitBackendOptions {
  /** Backend to use; default: env VISTUNE_BACKEND, else automatic. 'auto' forces automatic selection. */
  backend?: BackendName | 'auto';
  /** Silence tfjs console warnings (the "install our node backend" banner); default true. */
  quiet?: boolean;
  /**
   * wasm: run float32 matMuls on @vistune/native's SGEMM where its addon built (backend/native.ts); default
   * true unless env VISTUNE_NATIVE=0. The chosen backend's detail says which ran and why.
   */
  native?: boolean;
}

function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

function requestedBackend(opts: InitBackendOptions): BackendName | 'auto' {
  if (opts.backend != null) {
    if (opts.backend !== 'auto' && !isBackendName(opts.backend)) {
      throw new Error(
        `initBackend: option backend="${opts.backend}" is not one of auto, ${BACKEND_NAMES.join(', ')}`,
      );
    }
    return opts.backend;
  }
  const fromEnv = process.env[BACKEND_ENV_VAR]?.trim().toLowerCase();
  if (!fromEnv) return 'auto';
  if (fromEnv !== 'auto' && !isBackendName(fromEnv)) {
    throw new Error(
      `Environment variable ${BACKEND_ENV_VAR}="${fromEnv}" is not one of auto, ${BACKEND_NAMES.join(', ')}: fix or unset it`,
    );
  }
  return fromEnv;
}

let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

async function select(request: BackendName | 'auto'): Promise<BackendInfo> {
  const automatic = request === 'auto';
  const candidates: readonly ProviderSpec[] = automatic ? AUTOMATIC_ORDER : providersFor(request);
  const skipped: BackendInfo['skipped'] = [];
  for (const spec of candidates) {
    const result = await spec.load({ automatic });
    if (result.ok)
      return { name: spec.backend, provider: spec.provider, gpu: result.gpu, detail: result.detail, skipped };
    skipped.push({ provider: spec.provider, reason: result.reason });
  }
  const tried = skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ');
  if (request === 'auto') throw new Error(`initBackend: no tfjs backend could be initialised (${tried})`);
  const howTo = candidates.map((c) => `${c.provider}: ${c.howToGet}`).join('; ');
  throw new Error(`initBackend: backend "${request}" is unavailable (${tried}). To get it: ${howTo}`);
}

/**
 * Chooses and activates the tfjs backend (see the order above), registers the wasm/cpu kernel shims,
 * and returns what is running. Idempotent: later calls asking for nothing new return the same info.
 * An explicitly requested backend that cannot start is an error naming the reason and the fix.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  if (opts.quiet ?? true) tf.enableProdMode(); // in tfjs-core 4.22 PROD only gates log.warn/log.log, no checks
  await registerAllGradients();
  const request = requestedBackend(opts);
  if (pending) await pending.catch(() => undefined);
  if (current && (request === 'auto' || current.name === request)) {
    // Someone may have switched with tf.setBackend since (benchmarks do): switch back.
    if (tf.getBackend() !== current.name) await tf.setBackend(current.name);
    if (opts.native !== undefined && current.name === 'wasm') current = await withNativeMatmul(current, opts);
    return current;
  }
  pending = select(request);
  try {
    current = await pending;
    if (current.name === 'wasm') current = await withNativeMatmul(current, opts);
    return current;
  } finally {
    pending = null;
  }
}

/** Puts wasm's matMuls on the native SGEMM (or back), and says which in the detail. */
async function withNativeMatmul(info: BackendInfo, opts: InitBackendOptions): Promise<BackendInfo> {
  if (opts.native === false) disableNativeMatmul('disabled by initBackend({ native: false })');
  const status = opts.native === false ? undefined : await enableNativeMatmul();
  const base = info.detail.split('; matmul on ')[0];
  return { ...info, detail: `${base}; ${describeNativeMatmul(status)}` };
}

/** The backend chosen by initBackend, or null before it ran. */
export function currentBackend(): BackendInfo | null {
  return current;
}

/**
 * Availability of every provider. Probing activates each one in turn, then restores the backend active
 * before the call. libtensorflow can be loaded once per process, so after one tfjs-node package loads
 * the other is reported as not checked.
 */
export async function probeBackends(): Promise<BackendStatus[]> {
  const previous = tf.getBackend();
  const statuses: BackendStatus[] = [];
  for (const spec of PROVIDERS) {
    const result = await spec.load();
    const base = {
      provider: spec.provider as BackendProvider,
      backend: spec.backend,
      packageName: spec.packageName,
      howToGet: spec.howToGet,
    };
    statuses.push(
      result.ok
        ? { ...base, available: true, detail: result.detail }
        : { ...base, available: false, reason: result.reason },
    );
  }
  if (previous != null && tf.getBackend() !== previous) await tf.setBackend(previous);
  return statuses;
}
