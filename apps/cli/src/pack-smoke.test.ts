// The published tarballs work outside the workspace (tools/pack-smoke.mjs): every package is packed with pnpm,
// npm-installs into an empty project, the vistune bin runs, and loadModel reproduces a fixture case's greedy ids.
// Needs every package built (turbo builds them before tests) and the npm registry for third-party dependencies.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const script = new URL('../../../tools/pack-smoke.mjs', import.meta.url).pathname;
const run = promisify(execFile);

interface SmokeReport {
  ok: boolean;
  error?: string;
  stages: { name: string; error?: string; exports?: string[]; ids?: number[] }[];
}

let report: SmokeReport;

/** The stages that passed, up to the first failure. */
const passed = () => report.stages.filter((s) => s.error === undefined).map((s) => s.name);

beforeAll(async () => {
  // The script exits non-zero at a failing stage and still prints its JSON report: read it either way.
  const result = await run(process.execPath, [script, '--json'], {
    maxBuffer: 16 << 20,
    timeout: 240_000,
  }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  report = last.startsWith('{')
    ? (JSON.parse(last) as SmokeReport)
    : { ok: false, error: result.stdout, stages: [] };
}, 250_000);

describe('published packages, installed from their tarballs into an empty project', () => {
  it('pack without workspace ranges, with LICENSE and README; install; the bin runs; vistune imports', () => {
    const needed = ['built', 'pack', 'install', 'bin', 'import'];
    expect(
      needed.filter((stage) => !passed().includes(stage)),
      report.error,
    ).toEqual([]);
  });

  it('loadModel + generate reproduce the PyTorch reference greedy ids of a fixture case', () => {
    expect(report.error ?? 'ok').toBe('ok');
    expect(passed()).toContain('generate');
  });
});
