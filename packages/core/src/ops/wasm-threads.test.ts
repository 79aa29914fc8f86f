// useWasmThreads' worker script lives in a fresh private folder (mode 0700) made by this process, so a file
// another local user planted at a predictable /tmp path is never started; the threaded backend still runs.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { useWasmThreads, wasmThreads, writeWasmWorkerFile } from './wasm-threads.js';

const require = createRequire(import.meta.url);
const packageDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
const version = (require(join(packageDir, 'package.json')) as { version: string }).version;
const wasmOut = join(packageDir, 'wasm-out');

describe('useWasmThreads worker file', () => {
  it('ignores a file planted at the old predictable path and writes into a private folder', () => {
    const planted = join(tmpdir(), `vistune-tfjs-backend-wasm-threaded-simd-${version}.worker.js`);
    const marker = 'PLANTED-BY-ANOTHER-USER';
    let plantedHere = false;
    if (!existsSync(planted)) {
      writeFileSync(planted, `throw new Error('${marker}');`);
      plantedHere = true;
    }
    try {
      const path = writeWasmWorkerFile(wasmOut, version, require);
      expect(path).not.toBe(planted);
      expect(dirname(path).startsWith(join(tmpdir(), 'vistune-wasm-'))).toBe(true);
      expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
      expect(statSync(path).mode & 0o077).toBe(0); // not readable or writable by others
      const text = readFileSync(path, 'utf8');
      expect(text).not.toContain(marker);
      expect(text.length).toBeGreaterThan(1000);
      expect(writeWasmWorkerFile(wasmOut, version, require)).toBe(path); // one folder per process
    } finally {
      if (plantedHere) rmSync(planted);
    }
  });

  it('the threaded wasm backend starts from that file and computes', async () => {
    expect(await useWasmThreads(2)).toBe(2);
    await initBackend({ backend: 'wasm', native: false });
    expect(wasmThreads()).toBe(2);
    const product = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));
    expect(product.dataSync()[0]).toBe(64);
    product.dispose();
  });
});
