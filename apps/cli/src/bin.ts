#!/usr/bin/env node
import { mediaKindsFor } from './options.js';
import { buildProgram } from './program.js';
import { CliError, color } from './ui.js';

try {
  await buildProgram(await mediaKindsFor(process.argv.slice(2))).parseAsync(process.argv);
} catch (err) {
  const code = err instanceof CliError ? err.exitCode : 1;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${color.red('error')} ${message}\n`);
  if (process.env.VISTUNE_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = code;
}
