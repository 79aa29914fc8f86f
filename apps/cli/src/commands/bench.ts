import { type BackendName, type BackendOpsBench, benchOps } from '@vistune/core';
import type { Command } from 'commander';
import { color, printJson, table } from '../ui.js';

export function registerBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description('Benchmarks (commands, never tests): op throughput per backend, LLaVA train/generate speed');
  bench
    .command('ops')
    .description(
      'matmul GFLOP/s, attention fwd+bwd and a toy train step on every available backend, op layer vs naive tfjs',
    )
    .option('--backends <names>', 'comma-separated backends to measure (default: all available)')
    .option('--quick', 'fewer repetitions and smaller sizes')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  $ vistune bench ops\n  $ vistune bench ops --backends wasm --json')
    .action(async (opts: { backends?: string; quick?: boolean; json?: boolean }) => {
      const backends = opts.backends?.split(',').map((b) => b.trim()) as BackendName[] | undefined;
      const report = await benchOps({
        backends,
        quick: opts.quick,
        onProgress: opts.json ? undefined : (m) => process.stderr.write(`${color.dim(m)}\n`),
      });
      if (opts.json) return printJson(report);
      for (const r of report.results) process.stdout.write(`${formatBackend(r)}\n\n`);
      for (const s of report.skipped)
        process.stdout.write(`${color.yellow(s.backend)} skipped: ${s.reason}\n`);
    });
}

function formatBackend(r: BackendOpsBench): string {
  const lines = [color.bold(`${r.backend}  (${r.detail})`)];
  lines.push(
    table([
      ['matmul n', 'ms', 'GFLOP/s', 'GFLOP/s with transposeB flag'],
      ...r.matmul.map((m) => [
        String(m.n),
        m.ms.toFixed(2),
        m.gflops.toFixed(1),
        m.transposeFlagGflops.toFixed(1),
      ]),
    ]),
  );
  const { B, H, T, D } = r.attention.shape;
  const t = r.trainStep;
  lines.push(
    table([
      ['workload', 'op layer', 'naive tfjs', 'speedup'],
      [
        `attention fwd+bwd B${B} H${H} T${T} D${D}`,
        `${r.attention.opLayerMs.toFixed(1)} ms`,
        `${r.attention.naiveMs.toFixed(1)} ms`,
        `${r.attention.speedup.toFixed(2)}×`,
      ],
      [
        `toy train step (${(t.parameters / 1e6).toFixed(2)}M params)`,
        `${t.opLayerMs.toFixed(1)} ms (${t.opLayerTokensPerSec.toFixed(0)} tok/s)`,
        `${t.naiveMs.toFixed(1)} ms (${t.naiveTokensPerSec.toFixed(0)} tok/s)`,
        `${t.speedup.toFixed(2)}×`,
      ],
    ]),
  );
  return lines.join('\n');
}
