// Finds and loads the addon without ever throwing: VISTUNE_NATIVE_PATH, then the one compiled at install
// (build/Release), then the one shipped prebuilt for this platform (prebuilds/<platform>-<arch>[-musl]/). Each
// that is missing or fails to load (wrong glibc, stale, not this package's) is passed over with its reason kept.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDON_FILE, checkAddon, prebuildProblem, prebuildTarget, runtimeGlibc } from './addon-files.mjs';

export { PREBUILD_COMMAND } from './addon-files.mjs';
export const NATIVE_PATH_ENV_VAR = 'VISTUNE_NATIVE_PATH';

/** Where a loaded addon came from: VISTUNE_NATIVE_PATH, compiled at install, or prebuilt in the package. */
export type AddonOrigin = 'path' | 'compiled' | 'prebuilt';

export interface AddonCandidate {
  origin: AddonOrigin;
  /** The .node file. */
  path: string;
  /** How reports name it: "VISTUNE_NATIVE_PATH", "compiled at install", "prebuilt (linux-x64, glibc)". */
  label: string;
}

/** A candidate passed over, and why. */
export interface AddonAttempt extends AddonCandidate {
  error: string;
}

export interface LocateOptions {
  /** The package folder holding build/ and prebuilds/ (default: this package's). */
  packageRoot?: string;
  /** Read for VISTUNE_NATIVE_PATH (default process.env). */
  env?: Record<string, string | undefined>;
  platform?: string;
  arch?: string;
  /** The running glibc's version ("2.36"), or null for musl / not Linux (default: the running one). */
  glibc?: string | null;
}

export interface LoadOptions extends LocateOptions {
  /** Loads a .node file (default: Node's require); tests pass fakes. */
  requireAddon?: (path: string) => unknown;
}

export type AddonLoad<T> =
  | { addon: T; candidate: AddonCandidate; passedOver: AddonAttempt[] }
  | { addon: null; passedOver: AddonAttempt[] };

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function locate(options: LocateOptions) {
  const root = options.packageRoot ?? PACKAGE_ROOT;
  const platform = options.platform ?? process.platform;
  const glibc = options.glibc === undefined ? runtimeGlibc() : options.glibc;
  const libc = platform !== 'linux' ? null : glibc ? 'glibc' : 'musl';
  const target = prebuildTarget(platform, options.arch ?? process.arch, libc);
  return { root, glibc, target, libc };
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Number.NaN;
  }
}

/**
 * The addons to try, in order: VISTUNE_NATIVE_PATH when set; then the compiled and the prebuilt one, the
 * compiled first unless it is older than the prebuilt (a leftover from before the package was updated).
 */
export function addonCandidates(options: LocateOptions = {}): AddonCandidate[] {
  const { root, target, libc } = locate(options);
  const env = options.env ?? process.env;
  const explicit = env[NATIVE_PATH_ENV_VAR]?.trim();
  const compiled: AddonCandidate = {
    origin: 'compiled',
    path: join(root, 'build', 'Release', ADDON_FILE),
    label: 'compiled at install',
  };
  const prebuilt: AddonCandidate = {
    origin: 'prebuilt',
    path: join(root, 'prebuilds', target, ADDON_FILE),
    label: `prebuilt (${libc ? `${target.replace(/-musl$/, '')}, ${libc}` : target})`,
  };
  const compiledIsStale = mtime(compiled.path) < mtime(prebuilt.path);
  return [
    ...(explicit ? [{ origin: 'path' as const, path: resolve(explicit), label: NATIVE_PATH_ENV_VAR }] : []),
    ...(compiledIsStale ? [prebuilt, compiled] : [compiled, prebuilt]),
  ];
}

/** Why the install left no compiled addon, from the status file scripts/build-addon.mjs writes. */
function notCompiledReason(root: string): string {
  try {
    const status = JSON.parse(readFileSync(join(root, 'build', 'vistune-build.json'), 'utf8')) as {
      reason?: string | null;
    };
    if (status.reason) return `not built: ${status.reason}`;
  } catch {}
  return 'not built (install scripts did not run, or there was no compiler): `pnpm --filter @vistune/native build` compiles it';
}

/** Tries each candidate in order; the first that loads and passes checkAddon wins. */
export function loadAddon<T>(options: LoadOptions = {}): AddonLoad<T> {
  const { root, glibc } = locate(options);
  const load = options.requireAddon ?? createRequire(import.meta.url);
  const passedOver: AddonAttempt[] = [];
  for (const candidate of addonCandidates(options)) {
    let error: string | null = null;
    if (!existsSync(candidate.path)) {
      error =
        candidate.origin === 'compiled'
          ? notCompiledReason(root)
          : candidate.origin === 'prebuilt'
            ? 'none shipped for this platform'
            : 'no such file';
    } else if (candidate.origin === 'prebuilt') {
      error = prebuildProblem(candidate.path, root, glibc);
    }
    if (error === null) {
      try {
        return { addon: checkAddon(load(candidate.path) as T), candidate, passedOver };
      } catch (failure) {
        error = `did not load: ${failure instanceof Error ? failure.message.split('\n')[0] : String(failure)}`;
      }
    }
    passedOver.push({ ...candidate, error });
  }
  return { addon: null, passedOver };
}

/** "compiled at install (…/build/Release/vistune_native.node): not built: …; prebuilt (…): …" */
export function describeAttempts(attempts: readonly AddonAttempt[]): string {
  return attempts.map((a) => `${a.label} (${a.path}): ${a.error}`).join('; ');
}
