// Runs node-gyp for scripts/build-addon.mjs (compile at install) and scripts/prebuild.mjs (the shipped binary):
// the node-gyp that ships with npm, against the running Node's installed headers when there are any (no download).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** node-gyp from this package's dependencies if any, else the copy bundled with npm next to this Node. */
export function findNodeGyp() {
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
export function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim());
  const hit =
    lines.find((l) => /\berror\b:|not found|No such file|command not found|cannot find/i.test(l)) ??
    lines.find((l) => /gyp ERR! (stack|find)/.test(l));
  return (hit ?? lines.filter(Boolean).at(-1) ?? 'no output').slice(0, 200);
}

/**
 * `node-gyp rebuild --release` in cwd (which holds binding.gyp) with gyp variables as `-Dname=value`.
 * Returns { ok, reason, log }; never throws.
 */
export function nodeGypRebuild(cwd, { variables = {}, env = process.env } = {}) {
  const gyp = findNodeGyp();
  if (!gyp)
    return {
      ok: false,
      reason: 'node-gyp not found: it ships with npm; or add it with `pnpm add -D node-gyp`',
      log: '',
    };
  const args = [gyp, 'rebuild', '--release'];
  // Headers of the running Node, when installed with it (Debian/Homebrew/official tarballs): no download needed.
  const prefix = dirname(dirname(process.execPath));
  if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
    args.push(`--nodedir=${prefix}`);
  const defines = Object.entries(variables).map(([name, value]) => `-D${name}=${value}`);
  if (defines.length) args.push('--', ...defines);
  const run = spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8', timeout: 300_000 });
  const log = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
  if (run.error) return { ok: false, reason: `node-gyp did not run: ${run.error.message}`, log };
  if (run.status !== 0)
    return { ok: false, reason: `node-gyp exited with ${run.status}: ${firstError(log)}`, log };
  return { ok: true, reason: null, log };
}
