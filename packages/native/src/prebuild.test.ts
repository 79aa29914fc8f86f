// The committed prebuilt addon matches the sources and ships. Strict where it can be rebuilt (linux-x64 with
// glibc) and in CI; skipped with the reason elsewhere, since a contributor on macOS cannot produce the binary.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ADDON_FILE,
  addonSourceHash,
  PREBUILD_COMMAND,
  PREBUILD_META_FILE,
  runtimeGlibc,
} from './addon-files.mjs';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildDir = join(packageRoot, 'prebuilds', 'linux-x64');
const canRebuild = process.platform === 'linux' && process.arch === 'x64' && runtimeGlibc() !== null;
const strict = canRebuild || Boolean(process.env.CI);
const why = 'prebuilds/linux-x64 can only be rebuilt on linux-x64 with glibc (checked there and in CI)';

interface Meta {
  sourceHash: string;
  napiVersion: number;
  requires: { glibc: string; GLIBCXX: string };
}
const meta = JSON.parse(readFileSync(join(prebuildDir, PREBUILD_META_FILE), 'utf8')) as Meta;

describe('prebuilds/linux-x64', () => {
  it('was built from the current sources', (ctx) => {
    ctx.skip(!strict, why);
    expect(
      meta.sourceHash,
      `prebuilds/linux-x64/${ADDON_FILE} was built from other sources than src/ and binding.gyp: run \`${PREBUILD_COMMAND}\` and commit prebuilds/ with your change (the loader refuses a stale prebuild, so users without a compiler would lose the native kernels)`,
    ).toBe(addonSourceHash(packageRoot));
  });

  it('is an N-API addon that loads on old glibc and libstdc++ (glibc ≤ 2.17, GCC 6)', () => {
    expect(meta.napiVersion).toBe(8);
    expect(readFileSync(join(packageRoot, 'binding.gyp'), 'utf8')).toContain('"NAPI_VERSION=8"');
    const [major, minor] = meta.requires.glibc.split('.').map(Number);
    expect(major === 2 && minor <= 17, `needs glibc ${meta.requires.glibc}`).toBe(true);
    expect(
      Number(meta.requires.GLIBCXX.split('.')[2]),
      `needs GLIBCXX ${meta.requires.GLIBCXX}`,
    ).toBeLessThanOrEqual(22);
  });

  it('is committed to git and listed in package.json files, so a clean clone and the tarball have it', (ctx) => {
    let tracked: string;
    try {
      tracked = execFileSync('git', ['ls-files', 'prebuilds'], { cwd: packageRoot, encoding: 'utf8' });
    } catch (error) {
      ctx.skip(`not a git checkout (${error instanceof Error ? error.message.split('\n')[0] : error})`);
      return;
    }
    expect(tracked.split('\n').filter(Boolean).sort()).toEqual(
      [`prebuilds/linux-x64/${ADDON_FILE}`, `prebuilds/linux-x64/${PREBUILD_META_FILE}`].sort(),
    );
    const files = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { files: string[] })
      .files;
    expect(files).toContain('prebuilds/**/*');
  });
});
