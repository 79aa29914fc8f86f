import { defineConfig } from 'tsup';

// Each example is a command of its own; the vistune packages and tfjs stay external (resolved from the workspace).
export default defineConfig({
  entry: {
    'lisa-tiny': 'src/seg/lisa-tiny.ts',
    'lisa-world': 'src/seg/lisa-world.ts',
    'shikra-world': 'src/rec/shikra-world.ts',
    'rec-score': 'src/rec/rec-score.ts',
  },
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: [/^@tensorflow\//, /^@vistune\//, 'webgpu', 'sharp'],
});
