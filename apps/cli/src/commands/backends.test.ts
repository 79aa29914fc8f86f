// `vistune backends` says which native addon runs the matmuls (prebuilt, compiled at install, VISTUNE_NATIVE_PATH)
// and what was passed over, or none and why: the formatter on given statuses, then the built CLI end to end.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { NativeMatmulStatus } from '@vistune/core';
import { describe, expect, it } from 'vitest';
import { formatNativeAddon } from './backends.js';

const bin = new URL('../../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
/** The prebuilt addon in the workspace's @vistune/native (resolved the way core resolves it). */
const prebuilt = join(
  dirname(createRequire(createRequire(import.meta.url).resolve('@vistune/core')).resolve('@vistune/native')),
  '..',
  'prebuilds',
  'linux-x64',
  'vistune_native.node',
);

const PREBUILT_PATH = '/pkg/prebuilds/linux-x64/vistune_native.node';
const active: NativeMatmulStatus = {
  active: true,
  isa: 'avx2',
  threads: 1,
  addon: { origin: 'prebuilt', label: 'prebuilt (linux-x64, glibc)', path: PREBUILT_PATH },
  addonsPassedOver: [],
};

describe('formatNativeAddon', () => {
  it('names the prebuilt addon and its file', () => {
    expect(formatNativeAddon(active)).toBe(`native addon: prebuilt (linux-x64, glibc) — ${PREBUILT_PATH}`);
  });

  it('lists files that were there but passed over, not a compiled addon that was never built', () => {
    const text = formatNativeAddon({
      ...active,
      addonsPassedOver: [
        { origin: 'path', label: 'VISTUNE_NATIVE_PATH', path: '/x.node', error: 'no such file' },
        {
          origin: 'compiled',
          label: 'compiled at install',
          path: '/pkg/build/Release/vistune_native.node',
          error: 'not built: VISTUNE_NATIVE_BUILD=0',
        },
      ],
    });
    expect(text.split('\n')).toEqual([
      `native addon: prebuilt (linux-x64, glibc) — ${PREBUILT_PATH}`,
      '  passed over VISTUNE_NATIVE_PATH (/x.node): no such file',
    ]);
  });

  it('says none, with the reason, when no addon runs', () => {
    expect(formatNativeAddon({ active: false, reason: 'disabled by VISTUNE_NATIVE=0' })).toBe(
      'native addon: none (disabled by VISTUNE_NATIVE=0)',
    );
  });
});

/** Runs the built CLI with extra environment variables. */
async function vistune(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [bin, ...args], {
    env: {
      ...process.env,
      NO_COLOR: '1',
      VISTUNE_BACKEND: 'wasm',
      VISTUNE_NATIVE: '',
      VISTUNE_NATIVE_PATH: '',
      ...env,
    },
  });
  return stdout;
}

describe('vistune backends (built CLI)', () => {
  it('--json reports the addon VISTUNE_NATIVE_PATH names; text lists a bad path as passed over', async (ctx) => {
    ctx.skip(!existsSync(bin), `${bin} is missing: build the CLI first`);
    ctx.skip(!onLinuxX64, 'the shipped prebuilt addon is for linux-x64');
    const json = JSON.parse(await vistune({ VISTUNE_NATIVE_PATH: prebuilt }, 'backends', '--json')) as {
      nativeMatmul: NativeMatmulStatus;
    };
    expect(json.nativeMatmul).toMatchObject({
      active: true,
      addon: { origin: 'path', label: 'VISTUNE_NATIVE_PATH', path: prebuilt },
    });
    const text = await vistune({ VISTUNE_NATIVE_PATH: '/nonexistent/vistune_native.node' }, 'backends');
    expect(text).toMatch(
      /^native addon: (prebuilt \(linux-x64, glibc\)|compiled at install) — \S+vistune_native\.node$/m,
    );
    expect(text).toContain(
      '  passed over VISTUNE_NATIVE_PATH (/nonexistent/vistune_native.node): no such file',
    );
  }, 120_000);

  it('says none and why with VISTUNE_NATIVE=0', async (ctx) => {
    ctx.skip(!existsSync(bin), `${bin} is missing: build the CLI first`);
    const text = await vistune({ VISTUNE_NATIVE: '0' }, 'backends');
    expect(text).toMatch(/^native addon: none \(disabled by VISTUNE_NATIVE=0\)$/m);
  }, 120_000);
});
