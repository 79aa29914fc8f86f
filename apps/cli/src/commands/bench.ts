import { basename, extname } from 'node:path';
import {
  type BackendName,
  type BackendOpsBench,
  benchLlava,
  benchOps,
  initBackend,
  type LlavaBenchReport,
  readJsonFile,
  useWasmThreads,
} from '@vistune/core';
import { type Command, Option } from 'commander';
import { benchConnectors, connectorsTable, formatConnectorsSummary } from '../bench/connectors.js';
import { addSweepOptions, runSweepCommand } from '../bench/sweep.js';
import {
  addPluginOption,
  backendOption,
  commandRegistry,
  parsePositive,
  parsePositiveInt,
} from '../options.js';
import { cliReplica, replicasAvailable } from '../replica.js';
import { CliError, color, printJson, table } from '../ui.js';

interface ConfigBenchFlags {
  config?: string;
  threads: string;
  workers?: number;
  skipTrain?: boolean;
  skipGenerate?: boolean;
  lmHead: 'float32' | 'int8';
  json?: boolean;
}

export function registerBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description('Benchmarks (commands, never tests): op throughput per backend, LLaVA train/generate speed')
    .option('--config <file>', 'LLaVA config JSON with a "bench" object (as shared/bench/torch_ref.py reads)')
    .option(
      '--threads <n>',
      'threads: wasm runs XNNPACK on this many cores (threaded build), cpu runs one; the report says what ran',
      '1',
    )
    .addOption(
      new Option(
        '--workers <n>',
        'data-parallel replicas of the train step (worker_threads, each computing batch / n rows; default 1)',
      ).argParser(parsePositiveInt),
    )
    .option('--skip-train', 'time generation only')
    .option('--skip-generate', 'time training only')
    .addOption(
      new Option(
        '--lm-head <dtype>',
        'generation: the LM head in float32 or weight-only int8 rows (one scale per row)',
      )
        .choices(['float32', 'int8'])
        .default('float32'),
    )
    .option(
      '--plugin <name|path>',
      'load a plugin package or file first (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--json', 'print one JSON line, the shape of torch_ref.py\'s plus "backend"')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune bench --config configs/tiny.json --json\n  $ vistune --backend wasm bench --config configs/small.json --skip-generate',
    )
    .action(async (flags: ConfigBenchFlags, cmd: Command) => {
      if (cmd.opts<{ sweep?: boolean }>().sweep) return runSweepCommand(cmd);
      if (!flags.config) {
        cmd.help({ error: true });
        return;
      }
      await runConfigBench(flags.config, flags, cmd);
    });
  addSweepOptions(bench);
  bench
    .command('ops')
    .description(
      'matmul GFLOP/s, attention fwd+bwd and a toy train step on every available backend, op layer vs naive tfjs',
    )
    .option('--backends <names>', 'comma-separated backends to measure (default: all available)')
    .option('--quick', 'fewer repetitions and smaller sizes')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  $ vistune bench ops\n  $ vistune bench ops --backends wasm --json')
    .action(async (sub: { backends?: string; quick?: boolean; json?: boolean }, cmd: Command) => {
      // `bench` has its own --json, which commander would otherwise take for itself
      const opts = { ...sub, json: sub.json || cmd.optsWithGlobals<{ json?: boolean }>().json };
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
  registerConnectorsBench(bench);
}

interface ConnectorsBenchFlags {
  out: string;
  seed: number;
  quick?: boolean;
  steps?: number;
  evalEvery?: number;
  connectors?: string;
  recipes?: string;
  lr?: number;
  json?: boolean;
}

function registerConnectorsBench(bench: Command): void {
  const cmd = bench.command('connectors');
  addPluginOption(cmd);
  cmd
    .description(
      'every connector recipe (packages/adapters/recipes) on the demo world with one budget: the same pretrained tower, the same warmed-up LLM, steps and batches; trainable parameters, ms/step, held-out loss curve, VQA exact match, counting, Acc@0.5',
    )
    .option(
      '--out <dir>',
      'run folder: world/, report.json, connectors.md, learning-curve.svg/.html',
      'runs/bench-connectors',
    )
    .addOption(new Option('--seed <n>', 'world and init seed').argParser(parsePositiveInt).default(1))
    .option('--quick', 'a small world and 80 steps a connector (a few minutes)')
    .addOption(
      new Option('--steps <n>', 'training steps per connector (default 300, --quick 80)').argParser(
        parsePositiveInt,
      ),
    )
    .addOption(
      new Option('--eval-every <n>', 'held-out loss every n steps (default steps / 10)').argParser(
        parsePositiveInt,
      ),
    )
    .option('--connectors <names>', 'comma-separated recipe names (default: all), e.g. llava-mlp2x-gelu,ldp')
    .option('--recipes <dir>', 'folder of connector recipes (default: the ones @vistune/adapters ships)')
    .addOption(
      new Option('--lr <lr>', 'peak learning rate of every connector (default 1e-3)').argParser(
        parsePositive,
      ),
    )
    .option('--json', 'print the JSON report')
    .addHelpText(
      'after',
      '\nExamples:\n  $ vistune bench connectors\n  $ vistune bench connectors --quick --connectors llava-mlp2x-gelu,c-abstractor',
    )
    .action(async (flags: ConnectorsBenchFlags, cmd: Command) => {
      const json = flags.json || cmd.optsWithGlobals<{ json?: boolean }>().json;
      await initBackend({ backend: backendOption(cmd), quiet: true });
      const report = await benchConnectors(await commandRegistry(cmd), {
        out: flags.out,
        seed: flags.seed,
        quick: flags.quick,
        steps: flags.steps,
        evalEvery: flags.evalEvery,
        connectors: flags.connectors
          ?.split(',')
          .map((c) => c.trim())
          .filter(Boolean),
        recipesDir: flags.recipes,
        lr: flags.lr,
        onLog: json ? undefined : (m) => process.stderr.write(`${color.dim(m)}\n`),
      });
      if (json) return printJson(report);
      process.stdout.write(`${formatConnectorsSummary(report)}\n\n${connectorsTable(report)}\n\n`);
      process.stdout.write(
        `report ${report.paths.report}, learning curves ${report.paths.html} (${report.seconds.toFixed(0)} s)\n`,
      );
    });
}

async function runConfigBench(file: string, flags: ConfigBenchFlags, cmd: Command): Promise<void> {
  const threads = Number(flags.threads);
  if (!Number.isInteger(threads) || threads < 1)
    throw new CliError(`--threads must be a positive integer, got "${flags.threads}"`, 2);
  const backend = backendOption(cmd);
  if (threads > 1 && (backend === undefined || backend === 'wasm')) await useWasmThreads(threads);
  await initBackend({ backend, quiet: true });
  const config = (await readJsonFile(file, 'bench config')) as Record<string, unknown>;
  const workers = flags.workers ?? 1;
  if (workers > 1 && threads > 1)
    throw new CliError(
      `--workers ${workers} with --threads ${threads}: each replica takes a core of its own; use one of them`,
      2,
    );
  if (workers > 1 && !replicasAvailable())
    throw new CliError('--workers needs the built CLI (dist/replica.js): run `pnpm build` first', 2);
  const plugins = cmd.opts<{ plugin?: string[] }>().plugin ?? [];
  const report = await benchLlava(config, await commandRegistry(cmd), {
    name: basename(file, extname(file)),
    threads,
    workers,
    replica: cliReplica('benchReplicaModel', { config, seed: 0, plugins }),
    skipTrain: flags.skipTrain,
    skipGenerate: flags.skipGenerate,
    lmHead: flags.lmHead,
    onProgress: flags.json ? undefined : (m) => process.stderr.write(`${color.dim(m)}\n`),
  });
  if (flags.json) return printJson(report);
  process.stdout.write(`${formatLlava(report)}\n`);
}

function formatLlava(r: LlavaBenchReport): string {
  const rows = [['measure', 'value']];
  if (r.generate) {
    rows.push([
      'prefill (vision + prompt)',
      `${r.generate.prefill_ms.toFixed(1)} ms (${r.generate.prompt_tokens} tokens)`,
    ]);
    rows.push([
      'decode',
      `${r.generate.decode_tokens_per_s.toFixed(1)} tok/s${r.generate.lm_head === 'int8' ? ' (int8 LM head)' : ''}`,
    ]);
  }
  if (r.train) {
    rows.push([
      'train step (median / min)',
      `${r.train.median_ms_per_step.toFixed(1)} / ${r.train.min_ms_per_step.toFixed(1)} ms`,
    ]);
    rows.push([
      'train throughput',
      `${r.train.tokens_per_s.toFixed(0)} tok/s (batch ${r.train.batch} × seq ${r.train.seq})`,
    ]);
    rows.push(['loss first → last', `${r.train.loss_first} → ${r.train.loss_last}`]);
  }
  rows.push(['peak RSS', `${r.peak_rss_mb} MB`]);
  const head = color.bold(
    `${r.config}: ${r.backend} (${r.backend_detail}), ${r.threads} thread(s)${r.train && r.train.workers > 1 ? `, train on ${r.train.workers} replicas` : ''}, ${(r.params_total / 1e6).toFixed(1)}M params`,
  );
  return `${head}\n${table(rows)}`;
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
