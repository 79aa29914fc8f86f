// The tarball works where install scripts are blocked (pnpm 10's default): `pnpm pack`, then
// `npm install --ignore-scripts` into an empty project outside the workspace, and the prebuilt kernels load.
// Needs dist/ (`pnpm --filter @vistune/native build`); no registry access (the package has no dependencies).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREBUILD_META_FILE } from './addon-files.mjs';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const workspaceRoot = join(packageRoot, '..', '..');
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
const work = mkdtempSync(join(tmpdir(), 'vistune-native-pack-'));
const project = join(work, 'project');
const installed = join(project, 'node_modules', '@vistune', 'native');

/** `pnpm` when on PATH, else the workspace's packageManager through npx. */
function pnpm(): string[] {
  if (spawnSync('pnpm', ['--version']).status === 0) return ['pnpm'];
  const manager = (
    JSON.parse(readFileSync(join(workspaceRoot, 'package.json'), 'utf8')) as { packageManager: string }
  ).packageManager;
  return ['npx', '--yes', manager];
}

/** Runs a command, throwing its output's tail when it fails. */
function run(command: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command[0], command.slice(1), { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0)
    throw new Error(
      `${command.join(' ')} exited with ${result.status}: ${`${result.stdout}\n${result.stderr}`.slice(-2000)}`,
    );
  return result.stdout;
}

beforeAll(() => {
  if (!existsSync(join(packageRoot, 'dist', 'index.js')))
    throw new Error(
      `${join(packageRoot, 'dist', 'index.js')} is missing: run \`pnpm --filter @vistune/native build\` first`,
    );
  run([...pnpm(), 'pack', '--pack-destination', work], packageRoot);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`pnpm pack left no .tgz in ${work}`);
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(
    join(project, 'package.json'),
    '{ "name": "empty-project", "private": true, "type": "module" }\n',
  );
  // A scratch npm cache: the user's may be read-only or shared; nothing is fetched (no dependencies).
  const npmEnv = {
    ...process.env,
    npm_config_cache: join(work, 'npm-cache'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
  };
  run(['npm', 'install', '--ignore-scripts', '--no-package-lock', join(work, tarball)], project, npmEnv);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a module in the installed project and parses the JSON line it prints. */
function inProject<T>(code: string): T {
  const out = run([process.execPath, '--input-type=module', '-e', code], project, {
    ...process.env,
    VISTUNE_NATIVE_PATH: '',
  });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as T;
}

describe('@vistune/native installed from its tarball with install scripts blocked', () => {
  it('ships the prebuilt addon with its metadata and sources, and nothing was compiled', () => {
    expect(existsSync(join(installed, 'prebuilds', 'linux-x64', 'vistune_native.node'))).toBe(true);
    expect(existsSync(join(installed, 'prebuilds', 'linux-x64', PREBUILD_META_FILE))).toBe(true);
    expect(existsSync(join(installed, 'src', 'sgemm.cc'))).toBe(true);
    expect(existsSync(join(installed, 'build'))).toBe(false);
    expect(readdirSync(join(installed, 'src')).filter((f) => f.endsWith('.test.ts'))).toEqual([]);
  });

  it('loads the prebuilt kernels, which multiply', (ctx) => {
    ctx.skip(!onLinuxX64, 'the shipped prebuilt addon is for linux-x64');
    const status = inProject<{
      available: boolean;
      origin?: string;
      label?: string;
      path?: string;
      c?: number[];
      reason?: string;
    }>(`
      import { nativeKernelsStatus } from '@vistune/native';
      const s = nativeKernelsStatus();
      const c = new Float32Array(4);
      if (s.available) s.kernels.sgemm({ a: new Float32Array([1, 2, 3, 4]), b: new Float32Array([5, 6, 7, 8]), c, m: 2, n: 2, k: 2 });
      console.log(JSON.stringify(s.available ? { available: true, origin: s.kernels.origin, label: s.kernels.label, path: s.kernels.path, c: [...c] } : s));
    `);
    expect(status, status.reason).toMatchObject({
      available: true,
      origin: 'prebuilt',
      label: 'prebuilt (linux-x64, glibc)',
    });
    expect(status.path).toBe(join(installed, 'prebuilds', 'linux-x64', 'vistune_native.node'));
    expect(status.c).toEqual([19, 22, 43, 50]);
  });

  it('its install script (when allowed) would use the prebuilt addon, and compiles where that is stale', (ctx) => {
    ctx.skip(!onLinuxX64, 'the shipped prebuilt addon is for linux-x64');
    const script = join(installed, 'scripts', 'build-addon.mjs');
    expect(run([process.execPath, script, '--dry-run'], installed)).toMatch(
      /^would use the prebuilt addon .*linux-x64/,
    );
    const metaPath = join(installed, 'prebuilds', 'linux-x64', PREBUILD_META_FILE);
    const meta = readFileSync(metaPath, 'utf8');
    writeFileSync(metaPath, meta.replace(/"sourceHash": "[^"]*"/, '"sourceHash": "sha256:other"'));
    try {
      expect(run([process.execPath, script, '--dry-run'], installed)).toMatch(
        /^would compile \(prebuilt addon: stale/,
      );
    } finally {
      writeFileSync(metaPath, meta);
    }
  });
});
