import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Built into the command's dist/, where `vistune serve` finds it (dist/playground).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: { outDir: '../dist/playground', emptyOutDir: true, target: 'es2022' },
  logLevel: 'warn',
});
