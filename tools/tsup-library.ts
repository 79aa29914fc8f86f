import { defineConfig, type Options } from 'tsup';

/** The build every vistune library shares: ESM + .d.ts from src/index.ts for Node 20. */
export function libraryConfig(extra: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    // tfjs stays external: the wasm backend finds its .wasm files next to its module and the engine is a global singleton.
    external: [/^@tensorflow\//, /^@vistune\//, 'webgpu', 'sharp'],
    ...extra,
  });
}
