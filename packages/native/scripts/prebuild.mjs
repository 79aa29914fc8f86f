#!/usr/bin/env node
// Builds the addon shipped in prebuilds/linux-x64/ (glibc): the same node-gyp build as at install, in a scratch
// copy of the sources (build/ is left alone), with src/glibc-compat.h force-included so the binary needs no newer
// glibc / libstdc++ than the floors below. N-API (NAPI_VERSION 8): one binary serves Node 20 and 22. The kernels
// pick AVX-512 / AVX2 / plain C++ at run time, so the baseline stays x86-64 (CFLAGS etc. are not passed on).
// Writes prebuilds/linux-x64/vistune_native.json: the sources' hash (the loader refuses a stale binary, the
// tests fail on one), the library versions it needs, and what built it.
//
//   pnpm --filter @vistune/native prebuilds
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ADDON_FILE,
  addonSourceFiles,
  addonSourceHash,
  checkAddon,
  compareVersions,
  PREBUILD_META_FILE,
  prebuildTarget,
  runtimeGlibc,
} from '../src/addon-files.mjs';
import { nodeGypRebuild } from './node-gyp.mjs';

/** The newest version of each versioned library the binary may need: glibc 2.17 is CentOS 7's, GCC 6 libstdc++. */
const FLOORS = { GLIBC: '2.17', GLIBCXX: '3.4.22', CXXABI: '1.3.9' };

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const glibc = runtimeGlibc();
if (process.platform !== 'linux' || process.arch !== 'x64' || !glibc) {
  console.error(
    `prebuild: builds prebuilds/linux-x64 (glibc) only, and this is ${prebuildTarget(process.platform, process.arch, glibc ? 'glibc' : 'musl')}: run it on linux-x64 with glibc`,
  );
  process.exit(1);
}

/** Highest version of each library named in the binary's version needs (GLIBC_2.14, GLIBCXX_3.4.22, …). */
function neededVersions(binary) {
  const needed = {};
  for (const [, library, version] of binary
    .toString('latin1')
    .matchAll(/\b(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)+)\b/g))
    if (!needed[library] || compareVersions(version, needed[library]) > 0) needed[library] = version;
  return needed;
}

const target = 'linux-x64';
const scratch = mkdtempSync(join(tmpdir(), 'vistune-prebuild-'));
try {
  for (const file of addonSourceFiles(root))
    cpSync(join(root, file), join(scratch, file), { recursive: true });
  // The user's compiler flags (e.g. -march=native) would make a binary that dies on older CPUs.
  const env = { ...process.env };
  for (const name of ['CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS']) delete env[name];
  const build = nodeGypRebuild(scratch, { variables: { vistune_prebuild: 'true' }, env });
  if (!build.ok) {
    console.error(`prebuild: ${build.reason}\n${build.log.split('\n').slice(-30).join('\n')}`);
    process.exit(1);
  }
  const built = join(scratch, 'build', 'Release', ADDON_FILE);
  const binary = readFileSync(built);
  const needed = neededVersions(binary);
  const over = Object.entries(needed).filter(
    ([lib, v]) => FLOORS[lib] && compareVersions(v, FLOORS[lib]) > 0,
  );
  if (over.length) {
    console.error(
      `prebuild: the binary needs ${over.map(([lib, v]) => `${lib}_${v}`).join(', ')}, above the floors ${JSON.stringify(FLOORS)}: ` +
        `find the symbols with \`objdump -T ${built} | grep -E '${over.map(([lib, v]) => `${lib}_${v}`).join('|')}'\` and pin them to an older version in src/glibc-compat.h`,
    );
    process.exit(1);
  }
  const addon = checkAddon(createRequire(import.meta.url)(built));
  const outDir = join(root, 'prebuilds', target);
  mkdirSync(outDir, { recursive: true });
  cpSync(built, join(outDir, ADDON_FILE));
  const compiler = execFileSync(process.env.CXX || 'c++', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const meta = {
    target,
    libc: 'glibc',
    napiVersion: 8,
    sourceHash: addonSourceHash(root),
    requires: { glibc: needed.GLIBC, GLIBCXX: needed.GLIBCXX, CXXABI: needed.CXXABI },
    builtWith: { node: process.version, compiler, glibc },
    selfCheckedKernels: ['generic', 'avx2', 'avx512'].slice(0, addon.bestIsa + 1),
  };
  writeFileSync(join(outDir, PREBUILD_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(
    `prebuild: ${join('prebuilds', target, ADDON_FILE)} (${(binary.length / 1024).toFixed(0)} KiB, needs glibc ≥ ${needed.GLIBC}, GLIBCXX ${needed.GLIBCXX}); commit prebuilds/ with the sources`,
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
