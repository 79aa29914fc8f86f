// The loader's order and fall-through, on fake package folders: garbage .node files that fail to load, copies of
// the real prebuilt addon with edited metadata, and fake require functions for errors a real system would give.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ADDON_FILE, PREBUILD_META_FILE } from './addon-files.mjs';
import { resolveNativeKernels } from './index.js';
import { addonCandidates, describeAttempts, loadAddon, NATIVE_PATH_ENV_VAR } from './load.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const realPrebuild = join(packageRoot, 'prebuilds', 'linux-x64');
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
const scratch = mkdtempSync(join(tmpdir(), 'vistune-native-load-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let folders = 0;
const SAME_TIME = new Date(2024, 0, 1);
/** A fake package folder holding the given files (relative path → content, or a file to copy), all one age. */
function fakePackage(files: Record<string, string | { copy: string }>): string {
  const root = join(scratch, `pkg${folders++}`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    if (typeof content === 'string') writeFileSync(join(root, path), content);
    else cpSync(content.copy, join(root, path));
    utimesSync(join(root, path), SAME_TIME, SAME_TIME);
  }
  return root;
}

const COMPILED = `build/Release/${ADDON_FILE}`;
const PREBUILT = `prebuilds/linux-x64/${ADDON_FILE}`;
const META = `prebuilds/linux-x64/${PREBUILD_META_FILE}`;
const linuxGlibc = { platform: 'linux', arch: 'x64', glibc: '2.36', env: {} };

/** A stand-in addon that passes checkAddon (multiplies 2 × 2 matrices with its one kernel). */
const workingAddon = {
  bestIsa: 0,
  adamw() {},
  rotary() {},
  columnSum() {},
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array) {
    c.set([
      a[0] * b[0] + a[1] * b[2],
      a[0] * b[1] + a[1] * b[3],
      a[2] * b[0] + a[3] * b[2],
      a[2] * b[1] + a[3] * b[3],
    ]);
  },
};

describe('addonCandidates: the order addons are tried in', () => {
  it('VISTUNE_NATIVE_PATH first, then the compiled addon, then the prebuilt one for the platform', () => {
    const root = fakePackage({ [COMPILED]: 'x', [PREBUILT]: 'x' });
    const found = addonCandidates({
      ...linuxGlibc,
      packageRoot: root,
      env: { [NATIVE_PATH_ENV_VAR]: '/opt/my.node' },
    });
    expect(found.map((c) => [c.origin, c.path, c.label])).toEqual([
      ['path', '/opt/my.node', 'VISTUNE_NATIVE_PATH'],
      ['compiled', join(root, COMPILED), 'compiled at install'],
      ['prebuilt', join(root, PREBUILT), 'prebuilt (linux-x64, glibc)'],
    ]);
  });

  it('puts the prebuilt addon first when the compiled one is older (left over from before an update)', () => {
    const root = fakePackage({ [COMPILED]: 'x', [PREBUILT]: 'x' });
    utimesSync(join(root, COMPILED), new Date(2020, 0, 1), new Date(2020, 0, 1));
    expect(addonCandidates({ ...linuxGlibc, packageRoot: root }).map((c) => c.origin)).toEqual([
      'prebuilt',
      'compiled',
    ]);
  });

  it('names the folder by platform, arch and libc: musl and other systems get their own', () => {
    const musl = addonCandidates({ platform: 'linux', arch: 'x64', glibc: null, env: {}, packageRoot: '/p' });
    expect(musl[1]).toMatchObject({
      path: `/p/prebuilds/linux-x64-musl/${ADDON_FILE}`,
      label: 'prebuilt (linux-x64, musl)',
    });
    const mac = addonCandidates({
      platform: 'darwin',
      arch: 'arm64',
      glibc: null,
      env: {},
      packageRoot: '/p',
    });
    expect(mac[1]).toMatchObject({
      path: `/p/prebuilds/darwin-arm64/${ADDON_FILE}`,
      label: 'prebuilt (darwin-arm64)',
    });
  });
});

describe('loadAddon: a candidate that fails falls through with its reason', () => {
  it('loads the real prebuilt addon after a compiled file that is not a shared library', (ctx) => {
    ctx.skip(!onLinuxX64, 'the shipped prebuilt addon is for linux-x64');
    // No src/ in the fake package: there is nothing to compare the prebuild's source hash with.
    const root = fakePackage({
      [COMPILED]: 'not an ELF file',
      [PREBUILT]: { copy: join(realPrebuild, ADDON_FILE) },
      [META]: { copy: join(realPrebuild, PREBUILD_META_FILE) },
    });
    const found = loadAddon({
      ...linuxGlibc,
      packageRoot: root,
      env: { [NATIVE_PATH_ENV_VAR]: join(root, 'nope.node') },
    });
    expect(found.addon).not.toBeNull();
    expect('candidate' in found && found.candidate).toMatchObject({
      origin: 'prebuilt',
      label: 'prebuilt (linux-x64, glibc)',
    });
    expect(found.passedOver.map((a) => [a.origin, a.error.replace(/:.*/s, '')])).toEqual([
      ['path', 'no such file'],
      ['compiled', 'did not load'],
    ]);
    expect(found.passedOver[1].error).toMatch(/invalid ELF header|file too short/);
  });

  it('refuses a prebuilt addon built from other sources, naming the command that rebuilds it', () => {
    const root = fakePackage({
      'binding.gyp': '{}',
      'src/sgemm.cc': '// edited since the prebuild',
      [PREBUILT]: 'x',
      [META]: JSON.stringify({ target: 'linux-x64', sourceHash: 'sha256:0123', requires: { glibc: '2.14' } }),
    });
    const found = loadAddon({ ...linuxGlibc, packageRoot: root, requireAddon: () => workingAddon });
    expect(found.addon).toBeNull();
    const prebuilt = found.passedOver.find((a) => a.origin === 'prebuilt');
    expect(prebuilt?.error).toMatch(
      /^stale: built from other sources.*pnpm --filter @vistune\/native prebuilds/,
    );
  });

  it('refuses a prebuilt addon that needs a newer glibc than the running one, before loading it', () => {
    const root = fakePackage({
      [PREBUILT]: 'x',
      [META]: JSON.stringify({ sourceHash: 'x', requires: { glibc: '2.28' } }),
    });
    const loaded: string[] = [];
    const found = loadAddon({
      ...linuxGlibc,
      glibc: '2.17',
      packageRoot: root,
      requireAddon: (path) => loaded.push(path),
    });
    expect(found.addon).toBeNull();
    expect(loaded).toEqual([]);
    expect(found.passedOver.map((a) => a.error)).toContain('needs glibc ≥ 2.28, this system has 2.17');
  });

  it('records the loader’s error (a missing library version) and a binary without this API, then uses the next', () => {
    const root = fakePackage({
      [COMPILED]: 'x',
      [PREBUILT]: 'x',
      [META]: JSON.stringify({ sourceHash: 'x' }),
    });
    const compiledPath = join(root, COMPILED);
    const prebuiltPath = join(root, PREBUILT);
    const env = { [NATIVE_PATH_ENV_VAR]: prebuiltPath.replace('linux-x64', 'other') };
    mkdirSync(dirname(env[NATIVE_PATH_ENV_VAR]), { recursive: true });
    writeFileSync(env[NATIVE_PATH_ENV_VAR], 'x');
    const found = loadAddon({
      ...linuxGlibc,
      env,
      packageRoot: root,
      requireAddon: (path) => {
        if (path === compiledPath)
          throw new Error("/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found");
        return path === prebuiltPath ? workingAddon : { sgemm: 'not a function' };
      },
    });
    expect(found.addon).toBe(workingAddon);
    expect('candidate' in found && found.candidate.origin).toBe('prebuilt');
    expect(found.passedOver.map((a) => a.error)).toEqual([
      "did not load: it does not export sgemm, adamw, rotary, columnSum, bestIsa (not this version's addon)",
      "did not load: /lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found",
    ]);
  });

  it('a binary whose kernels compute wrong products is passed over', () => {
    const root = fakePackage({ [COMPILED]: 'x' });
    const broken = {
      ...workingAddon,
      sgemm: (_a: Float32Array, _b: Float32Array, c: Float32Array) => c.fill(1),
    };
    const found = loadAddon({ ...linuxGlibc, packageRoot: root, requireAddon: () => broken });
    expect(found.addon).toBeNull();
    expect(found.passedOver[0].error).toBe(
      'did not load: kernel 0 computed 1,1,1,1 for [[1,2],[3,4]]·[[5,6],[7,8]] (want 19,22,43,50)',
    );
  });

  it('with nothing loadable, the status reason lists every candidate and why', () => {
    const root = fakePackage({
      'build/vistune-build.json': JSON.stringify({ built: false, reason: 'g++: command not found' }),
    });
    const status = resolveNativeKernels({ ...linuxGlibc, packageRoot: root });
    expect(status.available).toBe(false);
    const reason = status.available ? '' : status.reason;
    expect(reason).toBe(`no native addon loaded: ${describeAttempts(status.passedOver)}`);
    expect(reason).toContain(
      `compiled at install (${join(root, COMPILED)}): not built: g++: command not found`,
    );
    expect(reason).toContain(
      `prebuilt (linux-x64, glibc) (${join(root, PREBUILT)}): none shipped for this platform`,
    );
  });
});

describe('the addon this package loads here', () => {
  it('is the compiled or the prebuilt one, and says which', (ctx) => {
    const status = resolveNativeKernels({ env: {} });
    ctx.skip(!status.available && !onLinuxX64, `no addon here: ${!status.available && status.reason}`);
    expect(status.available, !status.available ? status.reason : '').toBe(true);
    if (!status.available) return;
    expect(['compiled', 'prebuilt']).toContain(status.kernels.origin);
    expect(readFileSync(status.kernels.path).subarray(1, 4).toString()).toBe('ELF');
    const c = new Float32Array(4);
    status.kernels.sgemm({
      a: new Float32Array([1, 2, 3, 4]),
      b: new Float32Array([1, 0, 0, 1]),
      c,
      m: 2,
      n: 2,
      k: 2,
    });
    expect([...c]).toEqual([1, 2, 3, 4]);
  });
});
