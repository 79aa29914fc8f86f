// What the loader (src/load.ts) and the build scripts (scripts/*.mjs) must agree on: where an addon lives, the hash
// of the sources a prebuilt addon was built from, which libc this Linux runs, and the check that a loaded addon
// works. Plain JavaScript so the install script can import it before (or without) the TypeScript build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const ADDON_FILE = 'vistune_native.node';
/** Written beside each prebuilt addon by scripts/prebuild.mjs. */
export const PREBUILD_META_FILE = 'vistune_native.json';
/** Rebuilds prebuilds/linux-x64/ (on linux-x64 with glibc). */
export const PREBUILD_COMMAND = 'pnpm --filter @vistune/native prebuilds';

/** The files the addon is compiled from, relative to the package root, sorted. */
export function addonSourceFiles(packageRoot) {
  const src = join(packageRoot, 'src');
  if (!existsSync(src)) return [];
  const sources = readdirSync(src)
    .filter((f) => /\.(cc|h|inc)$/.test(f))
    .map((f) => `src/${f}`);
  return ['binding.gyp', ...sources.sort()];
}

/**
 * sha256 over the addon's sources (name and text, line endings normalised so a Windows checkout hashes the same),
 * or null where the package ships no sources to compare.
 */
export function addonSourceHash(packageRoot) {
  const files = addonSourceFiles(packageRoot);
  if (files.length < 2 || !existsSync(join(packageRoot, files[0]))) return null;
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(packageRoot, file), 'utf8').replace(/\r\n/g, '\n'));
    hash.update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

/** The running C library's version on glibc Linux ("2.36"), else null (musl, other systems). */
export function runtimeGlibc() {
  if (process.platform !== 'linux') return null;
  const header = process.report?.getReport?.().header;
  return header?.glibcVersionRuntime ?? null;
}

/** prebuilds/ folder name for a platform: linux-x64, linux-x64-musl, darwin-arm64, win32-x64. */
export function prebuildTarget(platform, arch, libc) {
  return `${platform}-${arch}${platform === 'linux' && libc === 'musl' ? '-musl' : ''}`;
}

/** -1, 0 or 1 as dotted version a is below, equal to or above b ("2.17" < "2.28"). */
export function compareVersions(a, b) {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * Why the prebuilt addon at addonPath must not be loaded here (stale against the package's sources, a glibc
 * older than it needs, unreadable metadata), from the metadata beside it; null when it may be loaded.
 */
export function prebuildProblem(addonPath, packageRoot, glibc) {
  const metaPath = join(dirname(addonPath), PREBUILD_META_FILE);
  let meta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  } catch (error) {
    return `${metaPath} is unreadable (${error instanceof Error ? error.message : error}): rebuild it with \`${PREBUILD_COMMAND}\``;
  }
  const sources = addonSourceHash(packageRoot);
  if (sources && meta.sourceHash !== sources)
    return `stale: built from other sources than this package's src/ (${metaPath} sourceHash ${String(meta.sourceHash).slice(0, 19)}…, sources ${sources.slice(0, 19)}…): rebuild it with \`${PREBUILD_COMMAND}\``;
  const needs = meta.requires?.glibc;
  if (needs && glibc && compareVersions(glibc, needs) < 0)
    return `needs glibc ≥ ${needs}, this system has ${glibc}`;
  return null;
}

/**
 * Throws an Error saying what is wrong unless the addon exports this package's API and multiplies 2 × 2
 * matrices right with every kernel it offers (a stale or foreign binary fails here, not in a model).
 */
export function checkAddon(addon) {
  const api = addon ?? {};
  const missing = ['sgemm', 'adamw', 'rotary', 'columnSum'].filter((name) => typeof api[name] !== 'function');
  if (!Number.isInteger(api.bestIsa)) missing.push('bestIsa');
  if (missing.length) throw new Error(`it does not export ${missing.join(', ')} (not this version's addon)`);
  const a = new Float32Array([1, 2, 3, 4]);
  const b = new Float32Array([5, 6, 7, 8]);
  for (let isa = 0; isa <= api.bestIsa; isa++) {
    const c = new Float32Array(4);
    api.sgemm(a, b, c, 2, 2, 2, 0, 0, 1, 4, 4, 4, isa, 1);
    if (c.join() !== '19,22,43,50')
      throw new Error(
        `kernel ${isa} computed ${c.join()} for [[1,2],[3,4]]·[[5,6],[7,8]] (want 19,22,43,50)`,
      );
  }
  return addon;
}
