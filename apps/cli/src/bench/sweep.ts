// `vistune bench --sweep`: how the cost of one LLaVA train step grows with sequence length and image tokens.
// Every point runs in its own process (a child `vistune bench --sweep --in-process`, and torch_ref.py when
// given), so each peak RSS is that shape's alone; the report has time and peak memory per step, plotted.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  benchLlava,
  initBackend,
  type Registry,
  readJsonFile,
  setOpPolicy,
  tf,
  useWasmThreads,
} from '@vistune/core';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { backendOption, commandRegistry, parsePositiveInt } from '../options.js';
import { color, printJson } from '../ui.js';

/** The shared benchmark's tiny LLaVA (shared/bench/configs/tiny.json without its "bench" object). */
export const TINY_LLAVA_CONFIG: Record<string, unknown> = {
  architectures: ['LlavaForConditionalGeneration'],
  model_type: 'llava',
  ignore_index: -100,
  image_token_index: 32000,
  pad_token_id: 32001,
  projector_hidden_act: 'gelu',
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  multimodal_projector_bias: true,
  tie_word_embeddings: false,
  image_seq_length: 64,
  text_config: {
    model_type: 'llama',
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    vocab_size: 32064,
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  },
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
    num_channels: 3,
    image_size: 64,
    patch_size: 8,
    hidden_size: 128,
    intermediate_size: 512,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  },
};

/** Which attention the vistune side runs: the op policy's choice by size, or one form forced for comparison. */
export type SweepAttention = 'auto' | 'chunked' | 'unchunked';

export interface SweepPoint {
  /** The axis this point belongs to: sequence length at fixed image tokens, or the reverse. */
  axis: 'seq' | 'image_tokens';
  seq: number;
  imageTokens: number;
}

/** One side's figures for one point (a train step: forward, backward, AdamW). */
export interface SweepMeasure {
  median_ms_per_step: number;
  min_ms_per_step: number;
  /** Loss of the first step: the same shape gives the same loss whichever attention form ran. */
  loss_first: number;
  /** ru_maxrss of the process that ran only this shape. */
  peak_rss_mb: number;
  /** vistune: the most bytes tfjs held in tensors at once during the steps. */
  tensor_peak_mb?: number;
}

export interface SweepFailure {
  error: string;
}

export interface SweepRow extends SweepPoint {
  batch: number;
  /** 1-minute load average when the point started (other work on the machine slows every figure). */
  load_1m: number;
  vistune: SweepMeasure | SweepFailure;
  torch?: SweepMeasure | SweepFailure;
}

export interface SweepReport {
  bench: 'vistune-sweep';
  attention: SweepAttention;
  batch: number;
  steps: number;
  warmup: number;
  rows: SweepRow[];
  paths: { report: string; svg: string; html: string };
}

/** Measures one point's config (with its "bench" object) on one side; rejects with a readable reason. */
export type PointRunner = (configFile: string) => Promise<SweepMeasure>;

export interface SweepOptions {
  /** Base LLaVA config (HF LlavaConfig JSON); default TINY_LLAVA_CONFIG. */
  config?: Record<string, unknown>;
  seqs: readonly number[];
  imageTokens: readonly number[];
  /** Sequence length of the image-token axis (default 1024). */
  imageAxisSeq?: number;
  /** Image tokens of the sequence axis (default: the config's). */
  seqAxisImageTokens?: number;
  batch: number;
  steps: number;
  warmup: number;
  attention: SweepAttention;
  out: string;
  vistune: PointRunner;
  torch?: PointRunner;
  onLog?: (message: string) => void;
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

function visionOf(config: Record<string, unknown>): { image_size: number; patch_size: number } {
  const vision = config.vision_config as { image_size?: number; patch_size?: number } | undefined;
  if (!vision?.image_size || !vision.patch_size)
    throw new Error(
      'bench --sweep: the config has no vision_config.image_size / patch_size: use a LLaVA config',
    );
  return { image_size: vision.image_size, patch_size: vision.patch_size };
}

/** Image tokens of a config: (image_size / patch_size)² ("default" feature selection drops CLS). */
export function configImageTokens(config: Record<string, unknown>): number {
  const { image_size, patch_size } = visionOf(config);
  return (image_size / patch_size) ** 2;
}

/** The points of both axes: every seq at the seq axis' image tokens, every image-token count at one seq. */
export function sweepPoints(
  seqs: readonly number[],
  imageTokens: readonly number[],
  imageAxisSeq: number,
  seqAxisImageTokens: number,
): SweepPoint[] {
  return [
    ...seqs.map((seq): SweepPoint => ({ axis: 'seq', seq, imageTokens: seqAxisImageTokens })),
    ...imageTokens.map((n): SweepPoint => ({ axis: 'image_tokens', seq: imageAxisSeq, imageTokens: n })),
  ];
}

/**
 * The base config at one point: a square image of √tokens patches, RoPE long enough for seq, and the
 * "bench" object torch_ref.py and benchLlava read. Errors name the flag to change.
 */
export function pointConfig(
  base: Record<string, unknown>,
  point: SweepPoint,
  sizes: { batch: number; steps: number; warmup: number },
): Record<string, unknown> {
  const side = Math.round(Math.sqrt(point.imageTokens));
  if (side * side !== point.imageTokens)
    throw new Error(
      `bench --sweep: --image-tokens ${point.imageTokens} is not a square (a ViT gives side² patches): use e.g. 4, 64, 256, 576`,
    );
  if (point.seq < point.imageTokens + 2)
    throw new Error(
      `bench --sweep: seq ${point.seq} is too short for ${point.imageTokens} image tokens (BOS + image + ≥ 1 text token): raise --seq or --image-axis-seq`,
    );
  const { patch_size } = visionOf(base);
  const text = base.text_config as Record<string, unknown>;
  const maxPositions = Math.max(Number(text.max_position_embeddings ?? 0), point.seq);
  return {
    ...base,
    image_seq_length: point.imageTokens,
    vision_config: { ...(base.vision_config as object), image_size: side * patch_size },
    text_config: { ...text, max_position_embeddings: maxPositions },
    bench: { batch: sizes.batch, seq: point.seq, steps: sizes.steps, warmup: sizes.warmup },
  };
}

/**
 * Records the most bytes tfjs's engine holds in tensors until stop() is called. The engine keeps a plain
 * counter and no high-water mark; profiling would read back every kernel's output, which distorts the timing.
 */
export function trackTensorPeak(): { stop: () => number } {
  const state = tf.engine().state as { numBytes: number };
  let current = state.numBytes;
  let peak = current;
  Object.defineProperty(state, 'numBytes', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: number) => {
      current = value;
      if (value > peak) peak = value;
    },
  });
  return {
    stop: () => {
      Object.defineProperty(state, 'numBytes', {
        configurable: true,
        enumerable: true,
        writable: true,
        value: current,
      });
      return peak;
    },
  };
}

/** The child's side of a point: a train step of this config in this process, with the attention forced or not. */
export async function measurePointInProcess(
  config: Record<string, unknown>,
  registry: Registry,
  attention: SweepAttention,
): Promise<SweepMeasure> {
  const forced = {
    auto: null,
    chunked: { chunkedAttentionMinScores: 0 },
    unchunked: { chunkedAttentionMinScores: Number.POSITIVE_INFINITY },
  }[attention];
  setOpPolicy(tf.getBackend(), forced);
  const tracker = trackTensorPeak();
  let tensorPeak = 0;
  try {
    const report = await benchLlava(config, registry, { name: 'sweep', skipGenerate: true });
    tensorPeak = tracker.stop();
    const train = report.train;
    if (!train) throw new Error('bench --sweep: the train step did not run');
    return {
      median_ms_per_step: train.median_ms_per_step,
      min_ms_per_step: train.min_ms_per_step,
      loss_first: train.loss_first,
      peak_rss_mb: report.peak_rss_mb,
      tensor_peak_mb: round(tensorPeak / 2 ** 20),
    };
  } finally {
    if (!tensorPeak) tracker.stop();
  }
}

/** Runs a command and resolves with its stdout; a failure carries the last lines of stderr (OOM, tracebacks). */
function run(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      const why = error.killed ? `killed (${error.signal ?? 'timeout'})` : `exit ${error.code}`;
      reject(new Error(`${command} ${args.join(' ')}: ${why}${tail ? `: ${tail}` : ''}`));
    });
  });
}

/** The last line of output that parses as a JSON object. */
function lastJsonLine(stdout: string, what: string): Record<string, unknown> {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${what} printed no JSON line`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** vistune's side: this CLI again, one process per point (`--in-process`), with the same global flags. */
export function vistuneChildRunner(opts: {
  cliScript: string;
  globalArgs: readonly string[];
  attention: SweepAttention;
  timeoutMs: number;
  threads: number;
}): PointRunner {
  return async (configFile) => {
    const args = [
      opts.cliScript,
      ...opts.globalArgs,
      'bench',
      '--sweep',
      '--in-process',
      '--config',
      configFile,
      '--attention',
      opts.attention,
      '--threads',
      String(opts.threads),
      '--json',
    ];
    const out = await run(process.execPath, args, opts.timeoutMs);
    return lastJsonLine(out, 'vistune bench --sweep --in-process') as unknown as SweepMeasure;
  };
}

/** PyTorch's side: shared/bench/torch_ref.py with the point's config (its "bench" object), training only. */
export function torchRefRunner(opts: {
  python: string;
  script: string;
  threads: number;
  timeoutMs: number;
}): PointRunner {
  return async (configFile) => {
    const args = [opts.script, configFile, '--skip-generate', '--threads', String(opts.threads)];
    const report = lastJsonLine(await run(opts.python, args, opts.timeoutMs), 'torch_ref.py');
    const train = report.train as Omit<SweepMeasure, 'peak_rss_mb'> | undefined;
    if (!train) throw new Error('torch_ref.py reported no "train" object');
    return {
      median_ms_per_step: train.median_ms_per_step,
      min_ms_per_step: train.min_ms_per_step,
      loss_first: train.loss_first,
      peak_rss_mb: Number(report.peak_rss_mb),
    };
  };
}

async function attempt(runner: PointRunner, file: string): Promise<SweepMeasure | SweepFailure> {
  try {
    return await runner(file);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

export function isMeasure(m: SweepMeasure | SweepFailure | undefined): m is SweepMeasure {
  return m !== undefined && !('error' in m);
}

/** Runs every point (vistune, then PyTorch), writes report.json, sweep.svg and sweep.html into out. */
export async function runSweep(opts: SweepOptions): Promise<SweepReport> {
  const base = opts.config ?? TINY_LLAVA_CONFIG;
  const points = sweepPoints(
    opts.seqs,
    opts.imageTokens,
    opts.imageAxisSeq ?? 1024,
    opts.seqAxisImageTokens ?? configImageTokens(base),
  );
  const sizes = { batch: opts.batch, steps: opts.steps, warmup: opts.warmup };
  const configs = points.map((p) => pointConfig(base, p, sizes)); // every shape checked before anything runs
  await mkdir(join(opts.out, 'configs'), { recursive: true });
  const rows: SweepRow[] = [];
  for (const [i, point] of points.entries()) {
    const file = join(opts.out, 'configs', `seq${point.seq}-img${point.imageTokens}.json`);
    await writeFile(file, `${JSON.stringify(configs[i], null, 2)}\n`);
    const row: SweepRow = {
      ...point,
      batch: opts.batch,
      load_1m: round(loadavg()[0], 2),
      vistune: { error: '' },
    };
    opts.onLog?.(`seq ${point.seq}, ${point.imageTokens} image tokens: vistune (load ${row.load_1m})`);
    row.vistune = await attempt(opts.vistune, file);
    if (opts.torch) {
      opts.onLog?.(`seq ${point.seq}, ${point.imageTokens} image tokens: PyTorch`);
      row.torch = await attempt(opts.torch, file);
    }
    rows.push(row);
  }
  const paths = {
    report: join(opts.out, 'report.json'),
    svg: join(opts.out, 'sweep.svg'),
    html: join(opts.out, 'sweep.html'),
  };
  const report: SweepReport = {
    bench: 'vistune-sweep',
    attention: opts.attention,
    batch: opts.batch,
    steps: opts.steps,
    warmup: opts.warmup,
    rows,
    paths,
  };
  await writeFile(paths.report, `${JSON.stringify(report, null, 2)}\n`);
  const svg = sweepSvg(report);
  await writeFile(paths.svg, `${svg}\n`);
  await writeFile(paths.html, sweepHtml(report, svg));
  return report;
}

// ------------------------------------------------------------------ plot: four panels, log₂ x axis

const PANEL = { width: 420, height: 260, left: 62, right: 14, top: 34, bottom: 42 };
const SERIES = [
  { side: 'vistune', color: '#1f77b4' },
  { side: 'torch', color: '#d62728' },
] as const;

type Metric = 'median_ms_per_step' | 'peak_rss_mb';

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
}

function panel(
  rows: readonly SweepRow[],
  axis: SweepPoint['axis'],
  metric: Metric,
  x0: number,
  y0: number,
): string {
  const onAxis = rows.filter((r) => r.axis === axis);
  const xOf = (r: SweepRow) => (axis === 'seq' ? r.seq : r.imageTokens);
  const values = onAxis.flatMap((r) =>
    SERIES.map((s) => r[s.side])
      .filter(isMeasure)
      .map((m) => m[metric]),
  );
  const xs = onAxis.map(xOf);
  const title = `${metric === 'median_ms_per_step' ? 'ms per train step' : 'peak RSS, MB'} vs ${axis === 'seq' ? `sequence length (${onAxis[0]?.imageTokens ?? '?'} image tokens)` : `image tokens (seq ${onAxis[0]?.seq ?? '?'})`}`;
  const parts = [
    `<g transform="translate(${x0},${y0})">`,
    `<text x="${PANEL.width / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  if (xs.length === 0 || values.length === 0) {
    parts.push(
      `<text x="${PANEL.width / 2}" y="${PANEL.height / 2}" text-anchor="middle">no points</text></g>`,
    );
    return parts.join('\n');
  }
  const [plotW, plotH] = [PANEL.width - PANEL.left - PANEL.right, PANEL.height - PANEL.top - PANEL.bottom];
  const [lx0, lx1] = [Math.log2(Math.min(...xs)), Math.log2(Math.max(...xs))];
  const yMax = Math.max(...values) * 1.08;
  const px = (x: number) =>
    PANEL.left + (lx1 === lx0 ? plotW / 2 : ((Math.log2(x) - lx0) / (lx1 - lx0)) * plotW);
  const py = (y: number) => PANEL.top + plotH - (y / yMax) * plotH;
  parts.push(
    `<rect x="${PANEL.left}" y="${PANEL.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
  );
  for (const x of xs)
    parts.push(
      `<text x="${px(x).toFixed(1)}" y="${PANEL.top + plotH + 16}" text-anchor="middle" font-size="11">${x}</text>`,
    );
  for (let k = 0; k <= 4; k++) {
    const y = (yMax * k) / 4;
    parts.push(
      `<text x="${PANEL.left - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${Math.round(y)}</text>`,
    );
  }
  for (const s of SERIES) {
    const pts = onAxis
      .map((r) => [xOf(r), r[s.side]] as const)
      .filter((p): p is readonly [number, SweepMeasure] => isMeasure(p[1]));
    if (pts.length === 0) continue;
    const path = pts.map(([x, m]) => `${px(x).toFixed(1)},${py(m[metric]).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const [x, m] of pts)
      parts.push(
        `<circle cx="${px(x).toFixed(1)}" cy="${py(m[metric]).toFixed(1)}" r="3" fill="${s.color}"><title>${s.side} ${x}: ${m[metric]}</title></circle>`,
      );
  }
  parts.push('</g>');
  return parts.join('\n');
}

/** Time and peak RSS per train step against both axes, vistune and PyTorch (where measured) as two lines. */
export function sweepSvg(report: SweepReport): string {
  const [w, h] = [PANEL.width * 2, PANEL.height * 2 + 30];
  const legend = SERIES.map(
    (s, i) =>
      `<rect x="${20 + i * 140}" y="${h - 20}" width="12" height="12" fill="${s.color}"/><text x="${36 + i * 140}" y="${h - 10}">${s.side === 'torch' ? 'PyTorch (torch_ref.py)' : `vistune (${report.attention})`}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    panel(report.rows, 'seq', 'median_ms_per_step', 0, 0),
    panel(report.rows, 'seq', 'peak_rss_mb', PANEL.width, 0),
    panel(report.rows, 'image_tokens', 'median_ms_per_step', 0, PANEL.height),
    panel(report.rows, 'image_tokens', 'peak_rss_mb', PANEL.width, PANEL.height),
    ...legend,
    '</svg>',
  ].join('\n');
}

const cell = (m: SweepMeasure | SweepFailure | undefined, metric: keyof SweepMeasure) => {
  if (m === undefined) return '–';
  if (!isMeasure(m)) return 'failed';
  const v = m[metric];
  return v === undefined ? '–' : String(v);
};

/** Markdown table of the report, one row per point. */
export function sweepTable(report: SweepReport): string {
  const head =
    '| axis | seq | image tokens | load | vistune ms/step | PyTorch ms/step | vistune peak RSS MB | PyTorch peak RSS MB | vistune tensors peak MB |';
  const lines = report.rows.map(
    (r) =>
      `| ${r.axis} | ${r.seq} | ${r.imageTokens} | ${r.load_1m} | ${cell(r.vistune, 'median_ms_per_step')} | ${cell(r.torch, 'median_ms_per_step')} | ${cell(r.vistune, 'peak_rss_mb')} | ${cell(r.torch, 'peak_rss_mb')} | ${cell(r.vistune, 'tensor_peak_mb')} |`,
  );
  const failures = report.rows.flatMap((r) =>
    (['vistune', 'torch'] as const)
      .map((side) => [side, r[side]] as const)
      .filter((e): e is readonly [(typeof e)[0], SweepFailure] => e[1] !== undefined && !isMeasure(e[1]))
      .map(([side, f]) => `- ${side}, seq ${r.seq}, ${r.imageTokens} image tokens: ${f.error}`),
  );
  return [head, `|${'---|'.repeat(9)}`, ...lines, ...(failures.length ? ['', ...failures] : [])].join('\n');
}

function sweepHtml(report: SweepReport, svg: string): string {
  return [
    '<!doctype html>',
    '<meta charset="utf-8"><title>vistune bench --sweep</title>',
    '<body style="font-family: sans-serif">',
    `<h1>Train step cost vs sequence length and image tokens (batch ${report.batch}, ${report.steps} timed steps)</h1>`,
    svg,
    `<pre>${escapeXml(sweepTable(report))}</pre>`,
    '</body>',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------ the `bench --sweep` options and action

interface SweepFlags {
  config?: string;
  threads: string;
  json?: boolean;
  seq: number[];
  imageTokens: number[];
  imageAxisSeq: number;
  batch: number;
  sweepSteps: number;
  sweepWarmup: number;
  sweepOut: string;
  attention: SweepAttention;
  torchRef?: string;
  python: string;
  pointTimeout: number;
  inProcess?: boolean;
}

function positiveList(value: string): number[] {
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n > 0))
    throw new InvalidArgumentError(`expected comma-separated positive integers, got "${value}"`);
  return list;
}

/** Adds --sweep and its options to `bench` (named so as not to shadow the subcommands' --out / --steps). */
export function addSweepOptions(bench: Command): void {
  bench
    .option('--sweep', 'train-step time and peak memory over sequence length and image tokens, plotted')
    .addOption(
      new Option('--seq <list>', 'sweep: sequence lengths')
        .argParser(positiveList)
        .default([256, 1024, 2048, 4096]),
    )
    .addOption(
      new Option('--image-tokens <list>', 'sweep: image tokens (squares)')
        .argParser(positiveList)
        .default([4, 64, 576]),
    )
    .addOption(
      new Option('--image-axis-seq <n>', 'sweep: sequence length of the image-token axis')
        .argParser(parsePositiveInt)
        .default(1024),
    )
    .addOption(new Option('--batch <n>', 'sweep: batch size').argParser(parsePositiveInt).default(1))
    .addOption(
      new Option('--sweep-steps <n>', 'sweep: timed steps per point').argParser(parsePositiveInt).default(3),
    )
    .addOption(
      new Option('--sweep-warmup <n>', 'sweep: warm-up steps per point')
        .argParser(parsePositiveInt)
        .default(1),
    )
    .option(
      '--sweep-out <dir>',
      'sweep: folder for report.json, sweep.svg, sweep.html, configs/',
      'runs/bench-sweep',
    )
    .addOption(
      new Option('--attention <form>', 'sweep: attention form (auto = the op policy picks by size)')
        .choices(['auto', 'chunked', 'unchunked'])
        .default('auto'),
    )
    .option('--torch-ref <file>', "sweep: shared/bench/torch_ref.py, to measure PyTorch's side per point")
    .option('--python <bin>', 'sweep: Python with PyTorch for --torch-ref', 'python3')
    .addOption(
      new Option('--point-timeout <s>', 'sweep: seconds before a point counts as failed')
        .argParser(parsePositiveInt)
        .default(900),
    )
    .addOption(new Option('--in-process', 'sweep: measure --config here (what each point runs)').hideHelp());
}

/** `vistune bench --sweep`: the parent runs every point in children; a child (--in-process) measures one. */
export async function runSweepCommand(cmd: Command): Promise<void> {
  const flags = cmd.opts<SweepFlags>();
  const threads = Number(flags.threads);
  const backend = backendOption(cmd);
  if (flags.inProcess) {
    if (!flags.config) throw new Error('bench --sweep --in-process needs --config <point config JSON>');
    if (threads > 1 && (backend === undefined || backend === 'wasm')) await useWasmThreads(threads);
    await initBackend({ backend, quiet: true });
    const config = (await readJsonFile(flags.config, 'sweep point config')) as Record<string, unknown>;
    printJson(await measurePointInProcess(config, await commandRegistry(cmd), flags.attention));
    return;
  }
  const timeoutMs = flags.pointTimeout * 1000;
  const globalArgs = backend ? ['--backend', backend] : [];
  const report = await runSweep({
    config: flags.config
      ? ((await readJsonFile(flags.config, 'bench config')) as Record<string, unknown>)
      : undefined,
    seqs: flags.seq,
    imageTokens: flags.imageTokens,
    imageAxisSeq: flags.imageAxisSeq,
    batch: flags.batch,
    steps: flags.sweepSteps,
    warmup: flags.sweepWarmup,
    attention: flags.attention,
    out: flags.sweepOut,
    vistune: vistuneChildRunner({
      cliScript: process.argv[1],
      globalArgs: [...globalArgs],
      attention: flags.attention,
      timeoutMs,
      threads,
    }),
    torch: flags.torchRef
      ? torchRefRunner({ python: flags.python, script: flags.torchRef, threads, timeoutMs })
      : undefined,
    onLog: flags.json ? undefined : (m) => process.stderr.write(`${color.dim(m)}\n`),
  });
  if (flags.json) return printJson(report);
  process.stdout.write(`${sweepTable(report)}\n\nreport ${report.paths.report}, plot ${report.paths.html}\n`);
}
