// Loading each backend provider. Optional ones are loaded with `await import()` inside try/catch:
// tfjs-node(-gpu) registers and activates 'tensorflow' as an import side effect and throws at load
// when its native binding is missing, so a static import would crash every user without it.
import { createRequire } from 'node:module';
import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { registerKernelShims } from './kernel-shims.js';
import type { BackendName, BackendProvider } from './types.js';

export type LoadResult = { ok: true; gpu: boolean; detail: string } | { ok: false; reason: string };

export interface ProviderSpec {
  provider: BackendProvider;
  backend: BackendName;
  packageName: string;
  howToGet: string;
  /**
   * Registers the backend with tfjs (importing its package) and makes it the active backend. `automatic`:
   * chosen without being asked for, where a provider may decline what it would do when asked (webgpu on a
   * software adapter).
   */
  load(opts?: { automatic?: boolean }): Promise<LoadResult>;
}

/** A node_modules folder searched first for the optional backend packages (installed outside the project). */
export const OPTIONAL_MODULES_ENV_VAR = 'VISTUNE_OPTIONAL_MODULES';

/**
 * A specifier held in a variable so TypeScript and bundlers leave the optional import alone. With
 * VISTUNE_OPTIONAL_MODULES set, the package is resolved from that folder when it is there (its own
 * @tensorflow/tfjs-core must then be the project's: a link, since tfjs keeps one engine per module copy).
 */
async function importOptional(specifier: string): Promise<unknown> {
  const folder = globalThis.process?.env[OPTIONAL_MODULES_ENV_VAR];
  if (folder) {
    let resolved: string | null = null;
    try {
      resolved = createRequire(join(resolvePath(folder), 'vistune-optional.js')).resolve(specifier);
    } catch {
      // not in that folder: the project's own resolution below
    }
    if (resolved) return import(/* @vite-ignore */ pathToFileURL(resolved).href);
  }
  return import(/* @vite-ignore */ specifier);
}

function errorMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}

function importFailure(packageName: string, e: unknown): string {
  const msg = errorMessage(e);
  // tfjs-node(-gpu) is left without its native parts when its install script could not download them
  if (/tfjs_binding\.node\) can not be found|libtensorflow[\w.]*: cannot open shared object/.test(msg))
    return `${packageName} is installed but its native parts are missing (${msg.slice(0, 80)}…): its install script downloads tfjs_binding.node and libtensorflow, so run \`npm rebuild ${packageName}\` with network access (docs/gpu.md)`;
  // Node says "Cannot find package", vite (tests) "Could not resolve"
  if (msg.includes(packageName) && /Cannot find (package|module)|Could not resolve/.test(msg))
    return `${packageName} is not installed`;
  return `${packageName} failed to load: ${errorMessage(e)}`;
}

async function activate(name: BackendName): Promise<string | null> {
  try {
    const ok = await tf.setBackend(name);
    return ok ? null : `tf.setBackend('${name}') failed to initialise the backend`;
  } catch (e) {
    return `tf.setBackend('${name}') threw: ${errorMessage(e)}`;
  }
}

/** Which libtensorflow package this process has loaded (only one can be: both register 'tensorflow'). */
let loadedTensorflowPackage: string | null = null;

interface NodeBackendLike {
  isGPUPackage?: boolean;
  isUsingGpuDevice?: boolean;
}

/** Imports an optional package by name; the providers take it as a parameter so tests can stand in for one. */
export type PackageImporter = (packageName: string) => Promise<unknown>;

/**
 * The libtensorflow provider: tfjs-node-gpu when `gpuPackage`, else tfjs-node. `importPackage` is the
 * import seam (default: a plain dynamic import of the package name).
 */
export function tensorflowProvider(
  gpuPackage: boolean,
  importPackage: PackageImporter = importOptional,
): ProviderSpec {
  const packageName = gpuPackage ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const howToGet = gpuPackage
    ? 'npm i @tensorflow/tfjs-node-gpu@4.22.0 (Linux x86_64 or Windows; needs NVIDIA driver >450, CUDA 11.2 + cuDNN 8.1, and network access at install time: its install script downloads libtensorflow 2.9.1 GPU from storage.googleapis.com)'
    : 'npm i @tensorflow/tfjs-node@4.22.0 (needs network access at install time: its install script downloads libtensorflow 2.9.1 CPU from storage.googleapis.com)';
  return {
    provider: gpuPackage ? 'tfjs-node-gpu' : 'tfjs-node',
    backend: 'tensorflow',
    packageName,
    howToGet,
    async load() {
      if (loadedTensorflowPackage != null && loadedTensorflowPackage !== packageName) {
        return {
          ok: false,
          reason: `${loadedTensorflowPackage} is already loaded in this process (one libtensorflow per process)`,
        };
      }
      const previous = tf.getBackend();
      try {
        process.env.TF_CPP_MIN_LOG_LEVEL ??= '2'; // libtensorflow's C++ info logs
        await importPackage(packageName);
      } catch (e) {
        return { ok: false, reason: importFailure(packageName, e) };
      } finally {
        // The import switches to 'tensorflow' as a side effect; the caller decides what is active.
        if (previous != null && tf.getBackend() !== previous) await tf.setBackend(previous);
      }
      loadedTensorflowPackage = packageName;
      const failure = await activate('tensorflow');
      if (failure) return { ok: false, reason: failure };
      const nodeBackend = tf.backend() as unknown as NodeBackendLike;
      const gpu = nodeBackend.isUsingGpuDevice === true;
      const detail = gpu
        ? 'libtensorflow 2.9.1 on a CUDA device'
        : gpuPackage
          ? 'libtensorflow 2.9.1 GPU build found no usable CUDA device (it needs CUDA 11.2 + cuDNN 8.1 on LD_LIBRARY_PATH, docs/gpu.md); running on CPU'
          : 'libtensorflow 2.9.1 on CPU';
      return { ok: true, gpu, detail };
    },
  };
}

interface GpuDeviceDescriptorLike {
  requiredLimits?: Record<string, number>;
}
interface GpuAdapterLike {
  info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  limits?: { maxStorageBuffersPerShaderStage?: number };
  requestDevice?(descriptor?: GpuDeviceDescriptorLike): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

/**
 * tfjs-backend-webgpu 4.22 raises every limit it needs to the adapter's except storage buffers per shader
 * stage, so its device keeps WebGPU's default of 8: tf.addN of 8 or more tensors then builds a pipeline dawn
 * rejects, and the dropped work reads back as zeros. Devices made from `gpu` get the adapter's own limit.
 */
function raiseStorageBufferLimit(gpu: GpuLike): void {
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (opts) => {
    const adapter = await requestAdapter(opts);
    const limit = adapter?.limits?.maxStorageBuffersPerShaderStage;
    if (adapter?.requestDevice == null || limit == null) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = (descriptor = {}) =>
      requestDevice({
        ...descriptor,
        requiredLimits: { ...descriptor.requiredLimits, maxStorageBuffersPerShaderStage: limit },
      });
    return adapter;
  };
}
interface WebGpuModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The description of dawn's adapter when it is a software one (lavapipe, SwiftShader), once found. */
let softwareAdapter: string | null = null;

/** A software Vulkan driver is ~20× slower than wasm: webgpu on one runs only when asked for. */
function declineSoftwareAdapter(description: string): LoadResult {
  return {
    ok: false,
    reason: `the only WebGPU adapter is a software one (${description}): not chosen automatically; ask for it with VISTUNE_BACKEND=webgpu`,
  };
}

const webgpuProvider: ProviderSpec = {
  provider: 'webgpu',
  backend: 'webgpu',
  packageName: '@tensorflow/tfjs-backend-webgpu + webgpu',
  howToGet:
    'npm i @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu@0.6.2 (dawn.node, prebuilt) and a Vulkan driver: libvulkan1 plus a GPU ICD (the NVIDIA driver ships one)',
  async load({ automatic = false } = {}) {
    if (tf.findBackendFactory('webgpu') == null) {
      let dawn: WebGpuModule;
      try {
        dawn = (await importOptional('webgpu')) as WebGpuModule;
      } catch (e) {
        return { ok: false, reason: importFailure('webgpu', e) };
      }
      const g = globalThis as unknown as { navigator?: { gpu?: GpuLike } };
      const gpu = dawn.create([]);
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
      if (adapter == null)
        return {
          ok: false,
          reason: 'dawn (webgpu package) found no GPU adapter: no Vulkan driver or no GPU',
        };
      softwareAdapter =
        adapter.info?.isFallbackAdapter || adapter.info?.architecture === 'software'
          ? (adapter.info?.description ?? adapter.info?.vendor ?? 'unnamed')
          : null;
      if (automatic && softwareAdapter) return declineSoftwareAdapter(softwareAdapter);
      Object.assign(globalThis, dawn.globals);
      g.navigator ??= {};
      raiseStorageBufferLimit(gpu);
      g.navigator.gpu = gpu; // the tfjs webgpu backend registers itself only when navigator.gpu exists at import
      try {
        await importOptional('@tensorflow/tfjs-backend-webgpu');
      } catch (e) {
        return { ok: false, reason: importFailure('@tensorflow/tfjs-backend-webgpu', e) };
      }
    } else if (automatic && softwareAdapter) return declineSoftwareAdapter(softwareAdapter);
    const failure = await activate('webgpu');
    if (failure) return { ok: false, reason: failure };
    const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } })
      .adapterInfo;
    return {
      ok: true,
      gpu: true,
      detail: `WebGPU adapter ${info?.vendor ?? '?'} ${info?.architecture ?? ''}`.trim(),
    };
  },
};

const wasmProvider: ProviderSpec = {
  provider: 'wasm',
  backend: 'wasm',
  packageName: '@tensorflow/tfjs-backend-wasm',
  howToGet:
    'a dependency of @vistune/core: reinstall if missing (the .wasm files must stay next to its dist/, so do not bundle it)',
  async load() {
    try {
      await import('@tensorflow/tfjs-backend-cpu'); // the wasm shims delegate rare kernels to cpu
      await import('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      return { ok: false, reason: importFailure('@tensorflow/tfjs-backend-wasm', e) };
    }
    registerKernelShims('wasm');
    const failure = await activate('wasm');
    if (failure) return { ok: false, reason: failure };
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    return {
      ok: true,
      gpu: false,
      detail: `XNNPACK, ${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'multi-threaded' : 'single-threaded'}`,
    };
  },
};

const cpuProvider: ProviderSpec = {
  provider: 'cpu',
  backend: 'cpu',
  packageName: '@tensorflow/tfjs-backend-cpu',
  howToGet: 'a dependency of @vistune/core: reinstall if missing',
  async load() {
    try {
      await import('@tensorflow/tfjs-backend-cpu');
    } catch (e) {
      return { ok: false, reason: importFailure('@tensorflow/tfjs-backend-cpu', e) };
    }
    registerKernelShims('cpu');
    const failure = await activate('cpu');
    if (failure) return { ok: false, reason: failure };
    return { ok: true, gpu: false, detail: 'pure JavaScript kernels (slow; a fallback)' };
  },
};

/** Every provider, in automatic-selection order: GPU first, then libtensorflow CPU, then wasm, then cpu. */
export const PROVIDERS: readonly ProviderSpec[] = [
  tensorflowProvider(true),
  tensorflowProvider(false),
  webgpuProvider,
  wasmProvider,
  cpuProvider,
];

/**
 * Automatic selection: a GPU first (tfjs-node-gpu, then webgpu on a hardware adapter, which every main command
 * can run on since their reads are awaited), then tfjs-node, wasm and cpu.
 */
export const AUTOMATIC_ORDER: readonly ProviderSpec[] = [
  PROVIDERS[0],
  webgpuProvider,
  PROVIDERS[1],
  wasmProvider,
  cpuProvider,
];

export function providersFor(name: BackendName): ProviderSpec[] {
  return PROVIDERS.filter((p) => p.backend === name);
}
