// The published tarballs work outside the workspace (tools/pack-smoke.mjs): every package is packed with pnpm,
// npm-installs into an empty project, the vistune bin runs, and loadModel reproduces a fixture case's greedy ids.
// The third-party task package examples/plugin-points is installed beside them and, found by discovery alone,
// trains, generates and evaluates through the installed CLI.
// Needs every package built (turbo builds them before tests) and the npm registry for third-party dependencies.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const script = new URL('../../../tools/pack-smoke.mjs', import.meta.url).pathname;
const run = promisify(execFile);

interface SmokeReport {
  ok: boolean;
  error?: string;
  stages: {
    name: string;
    error?: string;
    exports?: string[];
    ids?: number[];
    step?: number;
    metrics?: string[];
  }[];
}

let report: SmokeReport;

/** The stages that passed, up to the first failure. */
const passed = () => report.stages.filter((s) => s.error === undefined).map((s) => s.name);

beforeAll(async () => {
  // The script exits non-zero at a failing stage and still prints its JSON report: read it either way.
  const result = await run(process.execPath, [script, '--json'], {
    maxBuffer: 16 << 20,
    timeout: 300_000,
  }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  report = last.startsWith('{')
    ? (JSON.parse(last) as SmokeReport)
    : { ok: false, error: result.stdout, stages: [] };
}, 310_000);

describe('published packages, installed from their tarballs into an empty project', () => {
  it('pack without workspace ranges, with LICENSE and README; install; the bin runs; vistune imports', () => {
    const needed = ['built', 'pack', 'install', 'bin', 'import'];
    expect(
      needed.filter((stage) => !passed().includes(stage)),
      report.error,
    ).toEqual([]);
  });

  it('loadModel + generate reproduce the PyTorch reference greedy ids of a fixture case', () => {
    expect(passed(), report.error).toContain('generate');
  });

  it('an installed task package is discovered and trains, generates (--points) and evaluates (--task) through npx vistune', () => {
    expect(report.error ?? 'ok').toBe('ok');
    const stage = (name: string) => report.stages.find((s) => s.name === name);
    expect(passed()).toEqual(
      expect.arrayContaining(['plugin registry', 'plugin train', 'plugin generate', 'plugin eval']),
    );
    expect(stage('plugin train')?.step).toBe(20);
    expect(stage('plugin eval')?.metrics).toEqual(expect.arrayContaining(['shape_accuracy', 'exact_match']));
  });
});
