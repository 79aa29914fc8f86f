import { defineConfig } from 'tsup';

export default defineConfig({
  // replica.js: what data-parallel training's worker threads import to build their model (src/replica.ts).
  entry: ['src/bin.ts', 'src/index.ts', 'src/replica.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  banner: { js: '' },
  external: [/^@tensorflow\//, /^@vistune\//, 'webgpu'],
});
