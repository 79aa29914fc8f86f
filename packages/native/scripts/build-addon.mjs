#!/usr/bin/env node
// Builds build/Release/vistune_native.node with node-gyp (the one npm ships, headers of the running Node, no
// network when those headers are installed). It never fails: without a compiler, make or node-gyp it writes
// the reason to build/vistune-build.json, prints one line, and the package's loader returns null with that
// reason, so vistune falls back to the wasm kernels. VISTUNE_NATIVE_BUILD=0 skips it, =force rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const buildDir = join(root, 'build');
const addon = join(buildDir, 'Release', 'vistune_native.node');
const statusFile = join(buildDir, 'vistune-build.json');
const logFile = join(buildDir, 'vistune-build.log');
const mode = (process.env.VISTUNE_NATIVE_BUILD ?? '').trim().toLowerCase();

function finish(built, reason, log) {
  mkdirSync(buildDir, { recursive: true });
  if (log !== undefined) writeFileSync(logFile, log);
  writeFileSync(statusFile, `${JSON.stringify({ built, reason, node: process.version }, null, 2)}\n`);
  if (!built) {
    rmSync(addon, { force: true });
    console.log(`@vistune/native: native kernels not built (${reason}); vistune uses the wasm kernels`);
  }
  process.exit(0);
}

/** Newest modification time of what the addon is built from. */
function newestSource() {
  const files = [join(root, 'binding.gyp'), fileURLToPath(import.meta.url)];
  for (const f of readdirSync(join(root, 'src')))
    if (/\.(cc|h|inc)$/.test(f)) files.push(join(root, 'src', f));
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** node-gyp from this package's dependencies if any, else the copy bundled with npm next to this Node. */
function findNodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {}
  const prefix = dirname(dirname(process.execPath));
  const candidates = [
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  if (process.env.npm_execpath)
    candidates.push(
      join(dirname(dirname(process.env.npm_execpath)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** The first line of node-gyp's output that says what went wrong. */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim());
  const hit =
    lines.find((l) => /\berror\b:|not found|No such file|command not found|cannot find/i.test(l)) ??
    lines.find((l) => /gyp ERR! (stack|find)/.test(l));
  return (hit ?? lines.filter(Boolean).at(-1) ?? 'no output').slice(0, 200);
}

/** Loads the fresh binary and multiplies 2×2 matrices with every kernel it offers. */
function selfCheck() {
  const native = createRequire(import.meta.url)(addon);
  const a = new Float32Array([1, 2, 3, 4]);
  const b = new Float32Array([5, 6, 7, 8]);
  for (let isa = 0; isa <= native.bestIsa; isa++) {
    const c = new Float32Array(4);
    native.sgemm(a, b, c, 2, 2, 2, 0, 0, 1, 0, 0, 0, isa, 1);
    if (c.join() !== '19,22,43,50')
      throw new Error(`kernel ${isa} computed ${c.join()} for [[1,2],[3,4]]·[[5,6],[7,8]]`);
  }
}

if (mode === '0') finish(false, 'VISTUNE_NATIVE_BUILD=0');
if (mode !== 'force' && existsSync(addon) && statSync(addon).mtimeMs > newestSource()) {
  try {
    selfCheck();
    process.exit(0); // up to date
  } catch {}
}
const gyp = findNodeGyp();
if (!gyp) finish(false, 'node-gyp not found: it ships with npm; or add it with `pnpm add -D node-gyp`');
const args = [gyp, 'rebuild', '--release'];
// Headers of the running Node, when installed with it (Debian/Homebrew/official tarballs): no download needed.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
  args.push(`--nodedir=${prefix}`);
const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 300_000 });
const log = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
if (run.error) finish(false, `node-gyp did not run: ${run.error.message}`, log);
if (run.status !== 0) finish(false, `node-gyp exited with ${run.status}: ${firstError(log)}`, log);
try {
  selfCheck();
} catch (error) {
  finish(
    false,
    `the built addon failed its self-check: ${error instanceof Error ? error.message : error}`,
    log,
  );
}
finish(true, null, log);
