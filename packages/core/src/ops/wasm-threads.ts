// Multi-threaded XNNPACK for the wasm backend in Node. tfjs 4.22 ships a threaded SIMD build but never
// loads it in Node: its WASM_HAS_MULTITHREAD_SUPPORT flag is false there, its pthread worker is a blob: URL
// (Node's Worker cannot start one), and the C side caps threads at navigator.hardwareConcurrency / 2, which
// Node answers with os.cpus().length (so 1 on a 2-core machine). This registers a 'wasm' backend factory
// that loads the threaded build with a worker file Node can start and reports 2 × threads logical cores to
// that cap; tfjs's own kernels then run unchanged, and XNNPACK's matMuls spread over `threads` cores.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

/** What this file needs of @tensorflow/tfjs-backend-wasm's exports. */
interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(threads: number): void;
  getThreadsCount(): number;
}

/** The Emscripten module of the threaded build, as far as it is used here. */
interface EmscriptenModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => unknown;
  tfjs?: Record<string, (...args: number[]) => unknown>;
  PThread: { runningWorkers: { unref(): void }[] };
}
type ModuleFactory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;
type WasmImports = Record<string, Record<string, unknown>>;

const BUILD = 'tfjs-backend-wasm-threaded-simd';

let threadsInUse = 0;
let wasmPackage: WasmPackage | null = null;

/** Threads XNNPACK runs on in the active wasm backend (1 without useWasmThreads; 0 when wasm is not active). */
export function wasmThreads(): number {
  if (tf.getBackend() !== 'wasm') return 0;
  return threadsInUse > 1 && wasmPackage ? Math.max(1, wasmPackage.getThreadsCount()) : 1;
}

let workerDir: string | null = null;

/**
 * Writes the worker script (Node starts workers from files) into a folder only this user can enter, made
 * fresh by this process: a fixed /tmp name could be planted by another local user and run as our code.
 * The folder is removed when the process exits.
 */
export function writeWasmWorkerFile(wasmOut: string, version: string, require: NodeJS.Require): string {
  if (workerDir === null) {
    const dir = mkdtempSync(join(tmpdir(), 'vistune-wasm-')); // mode 0700, a name no one could predict
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    workerDir = dir;
  }
  const path = join(workerDir, `${BUILD}-${version}.worker.js`);
  const { wasmWorkerContents } = require(join(wasmOut, `${BUILD}.worker.js`)) as {
    wasmWorkerContents: string;
  };
  // The exported string holds its string literals' "\n" unescaped (tfjs re-escapes it before making a blob).
  writeFileSync(path, wasmWorkerContents.replace(/\n/g, '\\n'), { mode: 0o600 });
  return path;
}

async function loadThreadedModule(
  wasmOut: string,
  workerPath: string,
  threads: number,
  require: NodeJS.Require,
) {
  const factory = require(join(wasmOut, `${BUILD}.js`)) as ModuleFactory;
  const { readFile } = await import('node:fs/promises');
  const binary = await readFile(join(wasmOut, `${BUILD}.wasm`));
  const module = await factory({
    locateFile: (file: string) => (file.endsWith('.worker.js') ? workerPath : join(wasmOut, file)),
    // Workers importScripts() this path to get the factory (a string is read from disk; a blob could not be).
    mainScriptUrlOrBlob: join(wasmOut, `${BUILD}.js`),
    instantiateWasm(imports: WasmImports, receive: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
      // The C side allows min(requested, logical cores / 2) threads: report enough cores for `threads`.
      const env = { ...imports.env, emscripten_num_logical_cores: () => 2 * threads };
      WebAssembly.instantiate(binary, { ...imports, env }).then(({ instance, module: m }) =>
        receive(instance, m),
      );
      return {}; // asynchronous instantiation: Emscripten waits for receive()
    },
  });
  // The same C entry points tfjs's own loader wraps (BackendWasm calls them).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}

/**
 * Makes the 'wasm' backend the threaded XNNPACK build with `threads` threads (Node only). Call it before
 * the wasm backend is first initialised (before initBackend); `threads` 1 keeps tfjs's default build.
 * Returns the threads the backend will use.
 */
export async function useWasmThreads(threads: number): Promise<number> {
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`useWasmThreads: threads must be a positive integer, got ${threads}`);
  if (threads === 1) return 1;
  if (threadsInUse === threads) return threads;
  if (tf.engine().registry.wasm != null) {
    throw new Error(
      'useWasmThreads: the wasm backend is already initialised (its tensors would be lost): call it before initBackend',
    );
  }
  const require = createRequire(import.meta.url);
  await import('@tensorflow/tfjs-backend-cpu'); // the wasm kernel shims delegate rare kernels to cpu
  const pkg = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as WasmPackage; // registers kernels + default factory
  const packageDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const version = (require(join(packageDir, 'package.json')) as { version: string }).version;
  const wasmOut = join(packageDir, 'wasm-out');
  const workerPath = writeWasmWorkerFile(wasmOut, version, require);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const module = await loadThreadedModule(wasmOut, workerPath, threads, require);
      const backend = new pkg.BackendWasm(module); // starts the thread pool
      // A running pthread's worker holds the event loop open; the pool waits forever, so let Node exit past it.
      for (const worker of module.PThread.runningWorkers) worker.unref();
      return backend;
    },
    2, // tfjs-backend-wasm's own priority
  );
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  pkg.setThreadsCount(threads);
  wasmPackage = pkg;
  threadsInUse = threads;
  return threads;
}
