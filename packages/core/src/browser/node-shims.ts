// What the browser build of vistune gets for Node's built-in modules: the in-memory file system for node:fs,
// POSIX paths for node:path, small stand-ins for url/os, and for the rest functions that say they are Node-only.
import { memoryFs, memoryFsPromises } from './fs.js';
import * as path from './path.js';

/** A function that fails with the module and name it stands for (called only on Node-only paths). */
export function nodeOnly(module: string, name: string): (...args: unknown[]) => never {
  // A plain function, so `new` on a Node-only class fails with this message too.
  return function nodeOnlyStub(): never {
    throw new Error(
      `${module} ${name} is not available in vistune's browser build: load files with fetchModelFolder / mountFiles and pass bytes or decoded images`,
    );
  };
}

/** node:async_hooks AsyncLocalStorage for code paths that are synchronous in the browser (run → getStore). */
class SyncLocalStorage<T> {
  private store: T | undefined;
  getStore(): T | undefined {
    return this.store;
  }
  run<R>(store: T, fn: (...args: unknown[]) => R, ...args: unknown[]): R {
    const previous = this.store;
    this.store = store;
    try {
      return fn(...args);
    } finally {
      this.store = previous;
    }
  }
}

const randomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n));

/** Stand-ins by module specifier ('node:fs', 'node:path', …). */
export const nodeShims: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'node:fs': memoryFs,
  'node:fs/promises': memoryFsPromises,
  'node:path': path.posix,
  'node:url': {
    fileURLToPath: (url: string | URL) => decodeURIComponent(new URL(String(url)).pathname),
    pathToFileURL: (p: string) => new URL(`file://${encodeURI(path.resolve(p))}`),
  },
  'node:os': {
    tmpdir: () => '/tmp',
    homedir: () => '/',
    cpus: () => [],
    availableParallelism: () => globalThis.navigator?.hardwareConcurrency ?? 1,
    platform: () => 'browser',
    EOL: '\n',
    endianness: () => 'LE',
  },
  'node:async_hooks': { AsyncLocalStorage: SyncLocalStorage },
  'node:crypto': {
    randomBytes,
    randomUUID: () => globalThis.crypto.randomUUID(),
  },
};
