import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'encoders', environment: 'node', include: ['src/**/*.test.ts'] },
});
