// `vistune bench connectors`: the connectors of packages/adapters/recipes compared on the demo world with one
// budget (TinyLLaVA Factory's connector comparison, small). The world is built once; stage 0 pretrains one
// vision tower (the demo's pretrainVisionTower) and a short text-only stage warms one LLM up on the world's
// conversations; every connector then starts from those same weights, trains what its recipe trains for the
// same steps on the same batches, and is scored on the same held-out images (the demo's evaluation).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  AdamW,
  clipByGlobalNorm,
  computeGradients,
  cosineSchedule,
  createLlava,
  createModel,
  disposeGradients,
  disposeMultimodalBatch,
  InstructionDataLoader,
  loadRecipe,
  lossCurveHtml,
  lossCurveSvg,
  type MultimodalBatch,
  type MultimodalModel,
  type Registry,
  type StepRecord,
  tf,
} from '@vistune/core';
import { generateWorld, loadWorldSplit, writeWorldTokenizer } from '@vistune/demo-world';
import {
  cachedImageLoader,
  type DemoModelSize,
  demoLlavaConfig,
  demoMetrics,
  demoPlan,
  demoPreprocessorConfig,
  evalPrompts,
  generateAnswers,
  type PixelProcessor,
  pretrainVisionTower,
  type TowerPretrainResult,
} from '../demo/index.js';

export interface ConnectorBenchOptions {
  /** Run folder: world/, report.json, connectors.md, learning-curve.svg / .html. */
  out: string;
  seed: number;
  /** Smaller world, fewer steps: the whole sweep in a few minutes. */
  quick?: boolean;
  /** Training steps per connector (default 300, quick 80). */
  steps?: number;
  /** Held-out loss every this many steps (default steps / 10). */
  evalEvery?: number;
  /** Recipe names (file names without .yaml) to run; default all in recipesDir. */
  connectors?: readonly string[];
  /** Folder of connector recipes; default the recipes shipped with @vistune/adapters. */
  recipesDir?: string;
  /** Peak learning rate of every connector (warm-up 5 %, cosine to 10 %). Default 1e-3, the demo's. */
  lr?: number;
  batchSize?: number;
  /** Overrides of the world and stage sizes (tests shrink them further than --quick). */
  sizes?: Partial<BenchSizes>;
  onLog?: (line: string) => void;
}

/** The demo's three headline figures on the held-out images. */
export interface Scores {
  vqaExactMatch: number;
  countAccuracy: number;
  groundingAcc50: number;
}

/** One connector's measurements. */
export interface ConnectorRow extends Scores {
  /** Recipe name. */
  name: string;
  /** Registered adapter type. */
  adapter: string;
  /** What of the LLM trains: all, none, or a count of its parameters (norms). */
  llm: 'trained' | 'frozen' | `${number} params`;
  trainableParameters: number;
  /** Slots an image occupies in the text. */
  slots: number;
  msPerStep: number;
  /** Held-out loss before training (step 0) and every evalEvery steps. */
  heldOut: { step: number; loss: number }[];
  seconds: number;
}

export interface ConnectorBenchReport {
  date: string;
  machine: string;
  backend: string;
  plan: {
    images: { train: number; val: number; test: number };
    patchSize: number;
    towerSteps: number;
    llmWarmupSteps: number;
    steps: number;
    evalEvery: number;
    batchSize: number;
    lr: number;
  };
  tower: TowerPretrainResult;
  llmWarmup: { first: number; last: number };
  /** The warmed-up LLM with every image slot zero: what answering from the text alone scores. */
  blind: Scores;
  rows: ConnectorRow[];
  seconds: number;
  paths: { report: string; table: string; svg: string; html: string };
}

/** The recipes shipped in @vistune/adapters (package.json `files` includes recipes/). */
export function defaultRecipesDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@vistune/adapters/package.json')), 'recipes');
}

export interface BenchSizes {
  images: { train: number; val: number; test: number };
  towerSteps: number;
  llmWarmupSteps: number;
  steps: number;
}

const SIZES: Record<'default' | 'quick', BenchSizes> = {
  // ~100 ms a step on a quiet 2-core machine: 14 connectors, the tower and the LLM warm-up in ~12 minutes.
  default: { images: { train: 3000, val: 32, test: 100 }, towerSteps: 400, llmWarmupSteps: 300, steps: 300 },
  quick: { images: { train: 600, val: 16, test: 30 }, towerSteps: 120, llmWarmupSteps: 80, steps: 80 },
};

/** The demo model with 16 px patches: a 4×4 grid of 16 image tokens, so token reducers have a grid to reduce. */
const BENCH_MODEL = (base: DemoModelSize): DemoModelSize => ({ ...base, patchSize: 16 });

/**
 * Records of a world split without their images, as world/train-text.json: the text the LLM warms up on, and
 * the text-only half of the LaVIN recipe's mixture-of-modality data.
 */
export async function writeTextOnly(worldDir: string): Promise<string> {
  const records = JSON.parse(await readFile(join(worldDir, 'train.json'), 'utf8')) as {
    id: string;
    conversations: { from: string; value: string }[];
  }[];
  const text = records.map((r) => ({
    id: r.id,
    conversations: r.conversations.map((t) => ({ ...t, value: t.value.replace('<image>\n', '') })),
  }));
  const path = join(worldDir, 'train-text.json');
  await writeFile(path, `${JSON.stringify(text)}\n`);
  return path;
}

/** Parameters of `model` whose names start with `prefix`, cloned (the shared starting weights). */
function snapshot(model: MultimodalModel, prefix: string): Map<string, tf.Tensor> {
  return new Map(
    model
      .namedParameters()
      .filter(([n]) => n.startsWith(prefix))
      .map(([n, p]) => [n, tf.clone(p)]),
  );
}

/** Trains the model's trainable parameters: AdamW, 5 % warm-up, cosine to 10 %, clip 1 (the demo's stages). */
class StepRunner {
  private readonly optimizer: AdamW;
  private readonly params: [string, tf.Variable][];
  readonly times: number[] = [];

  constructor(
    private readonly model: MultimodalModel,
    lr: number,
    steps: number,
  ) {
    this.params = model.trainableParameters();
    this.optimizer = new AdamW(this.params, {
      lr,
      weightDecay: 0,
      schedule: cosineSchedule({ totalSteps: steps, warmupRatio: 0.05, minLrRatio: 0.1 }),
    });
  }

  /** One optimizer step on `batch` (disposed here); returns its loss. */
  step(batch: MultimodalBatch): number {
    try {
      const started = performance.now();
      const { loss, grads } = computeGradients(() => {
        const out = this.model.forward(batch, { logits: false });
        if (!out.loss) throw new Error('vistune bench connectors: a training batch has no labels');
        return out.loss;
      }, this.params);
      const clipped = clipByGlobalNorm(grads, 1);
      disposeGradients(grads);
      this.optimizer.step(clipped.grads);
      disposeGradients(clipped.grads);
      this.times.push(performance.now() - started);
      return loss;
    } finally {
      disposeMultimodalBatch(batch);
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** The next batch, starting a new epoch when one ends. */
async function nextBatch(loader: InstructionDataLoader): Promise<MultimodalBatch> {
  const batch = (await loader.next()) ?? (await loader.next());
  if (!batch) throw new Error('vistune bench connectors: the training data gives no batch');
  return batch;
}

/** Mean LM loss over fixed held-out batches (no gradients). */
function heldOutLoss(model: MultimodalModel, batches: readonly MultimodalBatch[]): number {
  const wasTraining = model.training;
  model.eval();
  try {
    const losses = batches.map((batch) =>
      tf.tidy(() => (model.forward(batch, { logits: false }).loss as tf.Scalar).dataSync()[0] as number),
    );
    return losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
  } finally {
    if (wasTraining) model.train();
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
};

/** 'trained' when every LLM parameter trains, 'frozen' when none does, else how many do. */
function llmTraining(model: MultimodalModel): ConnectorRow['llm'] {
  const llm = model.namedParameters().filter(([n]) => n.startsWith('llm.'));
  const trained = llm.filter(([, p]) => p.trainable).reduce((n, [, p]) => n + p.size, 0);
  if (trained === 0) return 'frozen';
  return trained === llm.reduce((n, [, p]) => n + p.size, 0) ? 'trained' : `${trained} params`;
}

export async function benchConnectors(
  registry: Registry,
  opts: ConnectorBenchOptions,
): Promise<ConnectorBenchReport> {
  const started = performance.now();
  const log = opts.onLog ?? (() => {});
  const sizes = { ...SIZES[opts.quick ? 'quick' : 'default'], ...opts.sizes };
  const steps = opts.steps ?? sizes.steps;
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.round(steps / 10));
  const demo = demoPlan(opts.quick ? 'quick' : 'default');
  const batchSize = opts.batchSize ?? demo.instruct.batchSize;
  const lr = opts.lr ?? demo.instruct.lr;
  const model = BENCH_MODEL(demo.model);
  const out = resolve(opts.out);
  const worldDir = join(out, 'world');
  const recipesDir = opts.recipesDir ?? defaultRecipesDir();
  const names = (await readdir(recipesDir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => basename(f, '.yaml'))
    .sort();
  const unknown = (opts.connectors ?? []).filter((n) => !names.includes(n));
  if (unknown.length)
    throw new Error(
      `--connectors: no recipe ${unknown.join(', ')} in ${recipesDir} (there: ${names.join(', ')})`,
    );
  const chosen = opts.connectors?.length ? names.filter((n) => opts.connectors?.includes(n)) : names;

  // The demo's world: 64 px scenes of up to 4 shapes in a 2×2 layout, 4 questions per image.
  const grid = model.imageSize / demo.model.patchSize;
  log(
    `world: ${sizes.images.train} training images, ${sizes.images.val} for held-out loss, ${sizes.images.test} for scoring`,
  );
  await generateWorld({
    outDir: worldDir,
    seed: opts.seed,
    imageSize: model.imageSize,
    grid,
    maxObjects: Math.min(5, grid * grid),
    questionsPerImage: demo.questionsPerImage,
    counts: sizes.images,
  });
  const tokenizer = await writeWorldTokenizer(join(worldDir, 'tokenizer'));
  const preprocessorPath = join(worldDir, 'preprocessor_config.json');
  await writeFile(preprocessorPath, `${JSON.stringify(demoPreprocessorConfig(model.imageSize), null, 2)}\n`);
  const imageTokenId = tokenizer.tokenToId('<image>');
  if (imageTokenId === undefined)
    throw new Error('vistune bench connectors: the world tokenizer has no <image> token');
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: preprocessorPath,
  })) as unknown as PixelProcessor;
  const loadImage = cachedImageLoader(processor);
  const loader = (file: string, slots: number, batch: number, shuffle = true) =>
    InstructionDataLoader.fromFiles({
      files: file,
      tokenizer,
      template: 'vicuna_v1',
      templateOptions: { systemPrompt: '' },
      imageToken: { id: imageTokenId, slots },
      maxLength: 512,
      batchSize: batch,
      loadImage,
      seed: opts.seed,
      shuffle,
    });

  // Stage 0 and the LLM warm-up on one LLaVA of the bench's sizes; its weights seed every connector.
  const hf = demoLlavaConfig(model, { vocabSize: tokenizer.vocabSize, imageTokenId });
  const base = await createLlava(hf, registry, { seed: opts.seed });
  let tower: TowerPretrainResult;
  let llmWarmup: ConnectorBenchReport['llmWarmup'];
  let shared: Map<string, tf.Tensor>;
  let blind: Scores;
  const test = await loadWorldSplit(join(worldDir, 'test.json'));
  /** The demo's held-out scoring: greedy answers to every turn of the test split. */
  const score = async (m: MultimodalModel, slots: number): Promise<Scores> => {
    const prompts = evalPrompts(test, tokenizer, { tokenId: imageTokenId, slots });
    const predictions = await generateAnswers(m, prompts, {
      tokenizer,
      loadImage: (path) => loadImage(join(worldDir, path)),
    });
    const { vqaExactMatch, countAccuracy, groundingAcc50 } = demoMetrics(test, predictions);
    return { vqaExactMatch, countAccuracy, groundingAcc50 };
  };
  try {
    log(
      `stage 0: pretraining the ${model.visionHidden}-d ViT (${model.patchSize} px patches) for ${sizes.towerSteps} steps`,
    );
    tower = await pretrainVisionTower(base, {
      worldDir,
      cellSize: model.patchSize,
      loadImage,
      plan: { ...demo.tower, steps: sizes.towerSteps },
      seed: opts.seed,
    });
    log(`LLM warm-up: ${sizes.llmWarmupSteps} steps on the world's conversations without their images`);
    base.trainOnly(['llm.*']);
    base.train();
    const text = await loader(await writeTextOnly(worldDir), base.imageSeqLength, batchSize);
    const runner = new StepRunner(base, lr, sizes.llmWarmupSteps);
    const losses: number[] = [];
    try {
      for (let s = 0; s < sizes.llmWarmupSteps; s++) losses.push(runner.step(await nextBatch(text)));
    } finally {
      runner.dispose();
      text.dispose();
    }
    llmWarmup = { first: losses[0] ?? Number.NaN, last: losses[losses.length - 1] ?? Number.NaN };
    shared = new Map([...snapshot(base, 'modalities.image.encoder.'), ...snapshot(base, 'llm.')]);
    // The floor every connector starts from: the warmed-up LLM answering with all image slots zero.
    for (const [name, p] of base.namedParameters())
      if (name.startsWith('modalities.image.adapter.')) p.assign(tf.zerosLike(p));
    blind = await score(base, base.imageSeqLength);
    log(`no image (the warmed-up LLM, image slots zeroed): ${formatScores(blind)}`);
  } finally {
    base.dispose();
  }
  const llmConfig = { type: 'llama', config: hf.text_config };
  const { model_type: _towerType, ...towerFields } = hf.vision_config;
  const towerConfig = { type: 'clip_vision', ...towerFields };

  const rows: ConnectorRow[] = [];
  const records: StepRecord[] = [];
  const paths = {
    report: join(out, 'report.json'),
    table: join(out, 'connectors.md'),
    svg: join(out, 'learning-curve.svg'),
    html: join(out, 'learning-curve.html'),
  };
  const title = `Held-out loss per connector (${steps} steps, batch ${batchSize})`;
  /** The report so far, written after every connector so that a stopped sweep keeps what it measured. */
  const writeReport = async (): Promise<ConnectorBenchReport> => {
    const report: ConnectorBenchReport = {
      date: new Date().toISOString(),
      machine: `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores)`,
      backend: tf.getBackend(),
      plan: {
        images: sizes.images,
        patchSize: model.patchSize,
        towerSteps: sizes.towerSteps,
        llmWarmupSteps: sizes.llmWarmupSteps,
        steps,
        evalEvery,
        batchSize,
        lr,
      },
      tower,
      llmWarmup,
      blind,
      rows,
      seconds: (performance.now() - started) / 1000,
      paths,
    };
    await writeFile(paths.report, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(paths.table, `${connectorsTable(report)}\n`);
    await writeFile(paths.svg, `${lossCurveSvg(records, title)}\n`);
    await writeFile(paths.html, lossCurveHtml(records, title));
    return report;
  };
  try {
    for (const [index, name] of chosen.entries()) {
      const connectorStart = performance.now();
      const recipe = await loadRecipe(join(recipesDir, `${name}.yaml`));
      if (recipe.model.kind !== 'config')
        throw new Error(
          `${recipe.source}: model must be an inline composition (model_type: vistune) to be benchmarked`,
        );
      const {
        tokenizer: _t,
        preprocessor: _p,
        ...config
      } = recipe.model.config as Record<string, unknown> & {
        modalities: { image: { encoder: { type: string } } };
      };
      const image = config.modalities.image;
      // The bench's LLM and (for tower-based connectors) its pretrained tower; the recipe's adapter and select.
      const composed = {
        ...config,
        llm: llmConfig,
        modalities: {
          ...config.modalities,
          image: { ...image, encoder: image.encoder.type === 'clip_vision' ? towerConfig : image.encoder },
        },
      };
      const m = await createModel(composed, registry, { seed: opts.seed, source: recipe.source });
      try {
        const wanted = new Map([...shared].filter(([n]) => m.namedParameters().some(([p]) => p === n)));
        m.loadStateDict(wanted, { strict: false, source: 'bench shared weights' });
        const stage = recipe.stages[recipe.stages.length - 1];
        m.trainOnly(stage?.train ?? []);
        const slots = m.slotsPerItem('image', [3, model.imageSize, model.imageSize]);
        const trainable = m.numParameters({ trainableOnly: true });
        const adapter = String(m.composition?.modalities.image?.adapter.type ?? '?');
        log(
          `[${index + 1}/${chosen.length}] ${name} (${adapter}): ${trainable} trainable parameters, ${slots} image slots`,
        );
        const train = await loader(join(worldDir, 'train.json'), slots, batchSize);
        const valLoader = await loader(join(worldDir, 'val.json'), slots, 32, false);
        const val: MultimodalBatch[] = [];
        for (let b = await valLoader.next(); b; b = await valLoader.next()) val.push(b);
        valLoader.dispose();
        const runner = new StepRunner(m, lr, steps);
        const heldOut = [{ step: 0, loss: heldOutLoss(m, val) }];
        m.train();
        try {
          for (let s = 1; s <= steps; s++) {
            runner.step(await nextBatch(train));
            if (s % evalEvery === 0 || s === steps) heldOut.push({ step: s, loss: heldOutLoss(m, val) });
          }
        } finally {
          runner.dispose();
          train.dispose();
          for (const b of val) disposeMultimodalBatch(b);
        }
        const row: ConnectorRow = {
          name,
          adapter,
          llm: llmTraining(m),
          trainableParameters: trainable,
          slots,
          msPerStep: median(runner.times),
          heldOut,
          ...(await score(m, slots)),
          seconds: (performance.now() - connectorStart) / 1000,
        };
        rows.push(row);
        log(`    ${formatRowSummary(row)}`);
        for (const h of heldOut)
          records.push({
            step: h.step,
            stage: name,
            stageIndex: index,
            stageStep: h.step,
            epoch: 0,
            loss: h.loss,
            lr,
            gradNorm: 0,
            tokens: 0,
          });
        await writeReport();
      } finally {
        m.dispose();
      }
    }
  } finally {
    tf.dispose([...shared.values()]);
  }

  return writeReport();
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

function formatScores(s: Scores): string {
  return `VQA ${pct(s.vqaExactMatch)}, counting ${pct(s.countAccuracy)}, Acc@0.5 ${pct(s.groundingAcc50)}`;
}

function formatRowSummary(r: ConnectorRow): string {
  const first = r.heldOut[0]?.loss ?? Number.NaN;
  const last = r.heldOut[r.heldOut.length - 1]?.loss ?? Number.NaN;
  return `${r.msPerStep.toFixed(0)} ms/step, held-out loss ${first.toFixed(3)} → ${last.toFixed(3)}, ${formatScores(r)} (${r.seconds.toFixed(0)} s)`;
}

/** Held-out loss at the eval point nearest to `fraction` of the run. */
function lossAt(r: ConnectorRow, fraction: number): number {
  const target = fraction * (r.heldOut[r.heldOut.length - 1]?.step ?? 0);
  let best = r.heldOut[0];
  for (const h of r.heldOut) if (best && Math.abs(h.step - target) < Math.abs(best.step - target)) best = h;
  return best?.loss ?? Number.NaN;
}

/** The markdown table of a report: one row per connector. */
export function connectorsTable(report: ConnectorBenchReport): string {
  const header = [
    '| connector | adapter | LLM | trainable params | image slots | ms / step | held-out loss: start → ¼ → ½ → end | VQA exact match | counting | Acc@0.5 |',
    '|---|---|---|--:|--:|--:|---|--:|--:|--:|',
  ];
  const lines = report.rows.map((r) => {
    const curve = [0, 0.25, 0.5, 1].map((f) => lossAt(r, f).toFixed(3)).join(' → ');
    return `| ${r.name} | \`${r.adapter}\` | ${r.llm} | ${r.trainableParameters.toLocaleString('en-US')} | ${r.slots} | ${r.msPerStep.toFixed(0)} | ${curve} | ${pct(r.vqaExactMatch)} | ${pct(r.countAccuracy)} | ${pct(r.groundingAcc50)} |`;
  });
  const b = report.blind;
  const floor = `| *no image* (warmed-up LLM, slots zeroed) | — | — | — | — | — | — | ${pct(b.vqaExactMatch)} | ${pct(b.countAccuracy)} | ${pct(b.groundingAcc50)} |`;
  return [...header, floor, ...lines].join('\n');
}

/** Short console summary: one line per connector. */
export function formatConnectorsSummary(report: ConnectorBenchReport): string {
  return report.rows.map((r) => `${r.name.padEnd(22)} ${formatRowSummary(r)}`).join('\n');
}
