import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
// tfjs-backend-wasm fetches its .wasm binaries at run time: ship them under wasm/ (local.html sets the path).
const fromCore = createRequire(new URL('../../../packages/core/package.json', import.meta.url));
const wasmDir = dirname(fromCore.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.wasm'));

function tfjsWasmFiles(): Plugin {
  return {
    name: 'tfjs-wasm-files',
    generateBundle() {
      for (const name of [
        'tfjs-backend-wasm.wasm',
        'tfjs-backend-wasm-simd.wasm',
        'tfjs-backend-wasm-threaded-simd.wasm',
      ])
        this.emitFile({ type: 'asset', fileName: `wasm/${name}`, source: readFileSync(join(wasmDir, name)) });
    },
  };
}

// Built into the command's dist/, where `vistune serve` finds it (dist/playground): the chat playground
// (index.html) and vistune running in the page (local.html).
export default defineConfig({
  root,
  base: './',
  plugins: [tfjsWasmFiles()],
  build: {
    outDir: '../dist/playground',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rollupOptions: { input: { index: join(root, 'index.html'), local: join(root, 'local.html') } },
  },
  logLevel: 'warn',
});
