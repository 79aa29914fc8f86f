import { defineConfig } from 'vitest/config';

// One root run over every package; each package's own vitest.config.ts defines its project.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'examples/*'],
    // The models are CPU-bound and single-threaded per worker: two workers match the two cores CI has.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
