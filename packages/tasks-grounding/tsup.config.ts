import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // tfjs must stay external: the wasm backend finds its .wasm files next to its own module, and the engine is a global singleton.
  external: [/^@tensorflow\//, /^@vistune\//, 'webgpu', 'sharp'],
});
