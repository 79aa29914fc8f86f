#!/usr/bin/env node
// Compiles build/Release/vistune_native.node with node-gyp (the one npm ships, headers of the running Node, no
// network when those headers are installed), unless the package's prebuilt addon for this platform is current
// and loads here: then there is nothing to compile. It never fails: without a compiler, make or node-gyp it
// writes the reason to build/vistune-build.json, prints one line, and the loader uses the prebuilt addon or
// returns null with that reason, so vistune falls back to the wasm kernels. VISTUNE_NATIVE_BUILD=0 never
// compiles (the prebuilt addon is still used), =force compiles even where the prebuilt addon loads.
// --dry-run prints what it would do and changes nothing.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ADDON_FILE,
  addonSourceFiles,
  checkAddon,
  prebuildProblem,
  prebuildTarget,
  runtimeGlibc,
} from '../src/addon-files.mjs';
import { nodeGypRebuild } from './node-gyp.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const buildDir = join(root, 'build');
const addon = join(buildDir, 'Release', ADDON_FILE);
const statusFile = join(buildDir, 'vistune-build.json');
const logFile = join(buildDir, 'vistune-build.log');
const mode = (process.env.VISTUNE_NATIVE_BUILD ?? '').trim().toLowerCase();
const load = createRequire(import.meta.url);

function finish(built, reason, log, extra = {}) {
  mkdirSync(buildDir, { recursive: true });
  if (log !== undefined) writeFileSync(logFile, log);
  writeFileSync(
    statusFile,
    `${JSON.stringify({ built, reason, node: process.version, ...extra }, null, 2)}\n`,
  );
  if (!built && !extra.prebuilt) {
    rmSync(addon, { force: true });
    console.log(`@vistune/native: native kernels not built (${reason}); vistune uses the wasm kernels`);
  }
  process.exit(0);
}

/** Newest modification time of what the addon is built from. */
function newestSource() {
  const files = [...addonSourceFiles(root), 'scripts/build-addon.mjs', 'scripts/node-gyp.mjs'];
  return Math.max(...files.map((f) => statSync(join(root, f)).mtimeMs));
}

/** The prebuilt addon for this platform when it matches the sources, suits this libc and passes its check. */
function prebuilt() {
  const glibc = runtimeGlibc();
  const target = prebuildTarget(process.platform, process.arch, glibc ? 'glibc' : 'musl');
  const path = join(root, 'prebuilds', target, ADDON_FILE);
  if (!existsSync(path)) return { target, path, problem: `none shipped for ${target}` };
  const problem = prebuildProblem(path, root, glibc);
  if (problem) return { target, path, problem };
  try {
    checkAddon(load(path));
    return { target, path, problem: null };
  } catch (error) {
    return {
      target,
      path,
      problem: `did not load: ${error instanceof Error ? error.message.split('\n')[0] : error}`,
    };
  }
}

const found = mode === 'force' ? null : prebuilt();
if (process.argv.includes('--dry-run')) {
  console.log(
    found?.problem === null
      ? `would use the prebuilt addon ${found.path}`
      : mode === '0'
        ? `would compile nothing (VISTUNE_NATIVE_BUILD=0; prebuilt addon: ${found?.problem})`
        : `would compile (prebuilt addon: ${found?.problem ?? 'VISTUNE_NATIVE_BUILD=force'})`,
  );
  process.exit(0);
}
if (found?.problem === null) {
  // A compiled addon older than the sources would be tried before the prebuilt one: remove it.
  if (existsSync(addon) && statSync(addon).mtimeMs < newestSource()) rmSync(addon, { force: true });
  console.log(
    `@vistune/native: using the prebuilt addon for ${found.target}; nothing to compile (VISTUNE_NATIVE_BUILD=force compiles)`,
  );
  finish(false, `the prebuilt addon ${found.path} loads here`, undefined, { prebuilt: found.path });
}
if (mode === '0') finish(false, `VISTUNE_NATIVE_BUILD=0 (prebuilt addon: ${found?.problem})`);
if (mode !== 'force') {
  if (existsSync(addon) && statSync(addon).mtimeMs > newestSource()) {
    try {
      checkAddon(load(addon));
      process.exit(0); // up to date
    } catch {}
  }
}
const build = nodeGypRebuild(root);
if (!build.ok) finish(false, build.reason, build.log);
try {
  checkAddon(load(addon));
} catch (error) {
  finish(
    false,
    `the built addon failed its self-check: ${error instanceof Error ? error.message : error}`,
    build.log,
  );
}
finish(true, null, build.log);
