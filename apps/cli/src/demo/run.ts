// The embedded demo, end to end: generate the worlds → build a LLaVA from scratch → stage 0 (the vision tower
// names each cell's contents, then freezes) → stage 1 (alignment on simple scenes) → stage 2 (visual
// instruction tuning) with core's Trainer → greedy answers on the held-out
// split → per-kind report → sample conversations with boxes drawn. Nothing is downloaded.

import { copyFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type BudgetReport,
  computeGradientsAsync,
  createModel,
  disposeGradients,
  disposeMultimodalBatch,
  InstructionDataLoader,
  type MultimodalBatch,
  type MultimodalModel,
  parseRecipe,
  type Recipe,
  type Registry,
  type StageRecipe,
  type StepMetrics,
  type Tokenizer,
  Trainer,
} from '@vistune/core';
import { BoxCodec, generateWorld, loadWorldSplit, writeWorldTokenizer } from '@vistune/demo-world';
import { cliReplica, replicasAvailable } from '../replica.js';
import {
  type DemoPlan,
  type DemoSize,
  type DemoStagePlan,
  demoLlavaConfig,
  demoPlan,
  demoPreprocessorConfig,
} from './config.js';
import { cachedImageLoader, type PixelProcessor, writeMergedTrain } from './data.js';
import { evalPrompts, generateAnswers, shuffledMedia } from './evaluate.js';
import { type DemoHeadline, type DemoMetrics, demoMetrics, headline } from './report.js';
import { type SampleConversation, sampleConversations } from './samples.js';
import { formatTowerSummary, pretrainVisionTower, type TowerPretrainResult } from './tower.js';

export interface DemoOptions {
  /** Run folder: world/, world-align/, checkpoints/, model/, samples/, metrics.jsonl, loss.html, report.json. */
  out: string;
  seed: number;
  size: DemoSize;
  /**
   * Model replicas training stages 1 and 2 side by side (recipe parallel.workers); default
   * defaultDemoWorkers(plan), and 1 where the built replica module is missing (running from sources).
   */
  workers?: number;
  /** Run sizes to use instead of demoPlan(size) (experiments; `vistune demo --plan`). */
  plan?: DemoPlan;
  /** Progress lines for people (world sizes, model, stages). */
  onLog?: (line: string) => void;
  onStageStart?: (stage: string, steps: number) => void;
  onStep?: (metrics: StepMetrics) => void;
  /** Each step of stage 0 (the tower's pretraining), after onStageStart('tower', steps). */
  onTowerStep?: (step: number, loss: number) => void;
  /** Held-out answers to generate (one per assistant turn), before the first is generated. */
  onEvalStart?: (answers: number) => void;
  onEvalProgress?: (done: number, total: number) => void;
}

export interface DemoResult {
  plan: DemoPlan;
  seed: number;
  parameters: { visionTower: number; projector: number; llm: number; total: number };
  imageTokens: number;
  /** The step time measured before training, and the share of the planned steps that fit the budget. */
  calibration: StepCalibration;
  /** Stage 0: the vision tower's pretraining and its held-out cell accuracy. */
  tower: TowerPretrainResult;
  /** What the trainer's time budget did (steps run, re-plans, any shortfall); null for the untimed tiny run. */
  budget: BudgetReport | null;
  /** First and last logged loss of each stage. */
  losses: { stage: string; steps: number; first: number; last: number }[];
  metrics: DemoMetrics;
  /** The headline figures with every held-out prompt given another record's image (shuffledMedia). */
  shuffled: DemoHeadline;
  /** Prompts answered on the held-out split (one per assistant turn). */
  evalTurns: number;
  samples: SampleConversation[];
  seconds: { world: number; train: number; eval: number; total: number };
  paths: { out: string; model: string; metrics: string; lossPlot: string; report: string; samples: string };
}

/** Stage names: stage 1 aligns on simple scenes, stage 2 tunes on the full world. */
export const DEMO_STAGES = { tower: 'tower', align: 'align', instruct: 'instruct' } as const;

/**
 * Both LLaVA stages train the projector and the LLM; the vision tower stays as stage 0 left it. Trained jointly
 * from scratch, the tower's per-image variation collapsed within ~30 steps (to ~2 % of its features' norm, while
 * the LLM still ignored the image) and the model never recovered; frozen, it keeps every image distinct.
 */
export const TRAINED_PARAMETERS = ['llm.*', 'modalities.image.adapter.*'];

/**
 * Model replicas by default: two where there are two cores and every trained stage's batch has 32 rows or more
 * (each replica then computes 16: `--quick` ran 871 steps instead of 589 in its 140 s on the quiet 2-core EPYC,
 * 1.48×); else one, since halves of smaller batches cost nearly a whole one (16 split 2 × 8: 0.9×).
 */
export function defaultDemoWorkers(plan: DemoPlan): number {
  const batches = [plan.align, plan.instruct].filter((s) => s.steps > 0).map((s) => s.batchSize);
  return availableParallelism() >= 2 && batches.length > 0 && Math.min(...batches) >= 32 ? 2 : 1;
}

export interface StepCalibration {
  /** Estimated seconds of one training step: the median timed forward/backward pass. */
  stepSeconds: number;
  /** Planned steps of stages 1 + 2, and the steps that run (fewer where they would not fit the budget). */
  plannedSteps: number;
  steps: number;
}

const CALIBRATION_PASSES = 6;

/** Seconds of one forward + backward pass of the trained parameters on real batches (the first is warm-up). */
async function timePasses(model: MultimodalModel, loader: InstructionDataLoader): Promise<number> {
  const params = model.namedParameters();
  const times: number[] = [];
  // Batches first: their PNG decoding would otherwise compete with the timed passes (~25 % too slow).
  const batches: MultimodalBatch[] = [];
  for (let i = 0; i < CALIBRATION_PASSES; i++) {
    const batch = await loader.next();
    if (batch) batches.push(batch);
  }
  await new Promise((done) => setTimeout(done, 50)); // the loader's prefetch of the next batch settles
  for (const [i, batch] of batches.entries()) {
    try {
      const started = performance.now();
      const { grads } = await computeGradientsAsync(() => {
        const out = model.forward(batch, { logits: false });
        if (!out.loss) throw new Error('vistune demo: the calibration batch has no labels');
        return out.loss;
      }, params);
      disposeGradients(grads);
      if (i > 0) times.push((performance.now() - started) / 1000);
    } finally {
      disposeMultimodalBatch(batch);
    }
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1] ?? 0;
}

/** The plan's stage steps, scaled down together where stepSeconds × steps exceeds the budget. */
export function fitSteps(plan: DemoPlan, stepSeconds: number): { align: number; instruct: number } {
  const planned = plan.align.steps + plan.instruct.steps;
  const scale = stepSeconds > 0 ? Math.min(1, plan.trainBudgetSeconds / (stepSeconds * planned)) : 1;
  // A stage planned with 0 steps stays skipped.
  const fit = (steps: number) => (steps > 0 ? Math.max(1, Math.round(steps * scale)) : 0);
  return { align: fit(plan.align.steps), instruct: fit(plan.instruct.steps) };
}

function demoRecipe(
  plan: DemoPlan,
  hf: Record<string, unknown>,
  files: Record<string, string>,
  out: string,
  seed: number,
  workers: number,
): Recipe {
  const stage = (name: string, p: DemoStagePlan) => ({
    name,
    train: TRAINED_PARAMETERS,
    lr: p.lr,
    steps: p.steps,
    batchSize: p.batchSize,
    ...(p.accumulate ? { accumulate: p.accumulate } : {}),
    warmupRatio: p.warmupRatio ?? 0.05,
    schedule: 'cosine_with_min_lr' as const,
    minLrRatio: 0.1,
  });
  return parseRecipe(
    {
      model: hf,
      data: {
        train: files.instruct,
        template: 'vicuna_v1',
        maxLength: 512,
        batchSize: plan.instruct.batchSize,
      },
      stages: [stage(DEMO_STAGES.align, plan.align), stage(DEMO_STAGES.instruct, plan.instruct)].filter(
        (s) => (s.steps ?? 0) > 0,
      ),
      optimizer: { weightDecay: 0, clip: 1.0 },
      checkpoint: { every: 0, keep: 2 },
      parallel: { workers },
      // The trainer re-plans against the clock as it goes: a machine that gets loaded mid-run still ends on time.
      ...(Number.isFinite(plan.trainBudgetSeconds) ? { budget: { time: plan.trainBudgetSeconds } } : {}),
      seed,
      output: out,
    },
    { source: 'vistune demo' },
  );
}

function countParameters(model: MultimodalModel): DemoResult['parameters'] {
  const sum = (prefix: string) =>
    model
      .namedParameters()
      .filter(([name]) => name.startsWith(prefix))
      .reduce((n, [, p]) => n + p.size, 0);
  const visionTower = sum('modalities.image.encoder.');
  const projector = sum('modalities.image.adapter.');
  const llm = sum('llm.');
  return { visionTower, projector, llm, total: visionTower + projector + llm };
}

/** A model folder `vistune generate` / `chat` load: weights + config (its family's layout), tokenizer, preprocessor. */
function folderSaver(model: MultimodalModel, tokenizer: Tokenizer, preprocessorPath: string) {
  return async (_trained: unknown, dir: string): Promise<void> => {
    await model.save(dir, { tokenizer });
    await tokenizer.saveTo(dir);
    await copyFile(preprocessorPath, join(dir, 'preprocessor_config.json'));
  };
}

export async function runDemo(registry: Registry, opts: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const seconds = (from: number) => (performance.now() - from) / 1000;
  const log = opts.onLog ?? (() => {});
  const plan = opts.plan ?? demoPlan(opts.size);
  const out = resolve(opts.out);
  const worldDir = join(out, 'world');
  const alignDir = join(out, 'world-align');

  const { imageSize } = plan.model;
  // One object per cell of a patch-sized grid: each image token sees one whole object.
  const grid = imageSize / plan.model.patchSize;
  const maxObjects = Math.min(5, grid * grid);
  log(
    `world: ${plan.images.train} training images of 1–${maxObjects} coloured shapes (${plan.questionsPerImage} questions each), ` +
      `${plan.images.test} held out` +
      (plan.align.steps > 0 ? `; ${plan.alignImages} simpler images of 1–2 shapes for stage 1` : ''),
  );
  const worldStart = performance.now();
  await generateWorld({
    outDir: worldDir,
    seed: opts.seed,
    imageSize,
    grid,
    maxObjects,
    questionsPerImage: plan.questionsPerImage,
    counts: plan.images,
    ...(plan.kinds ? { kinds: plan.kinds } : {}),
    ...(plan.boxFormat ? { boxFormat: plan.boxFormat } : {}),
  });
  // Stage 1's own world: a different seed stream, so its scenes are not the main world's.
  if (plan.align.steps > 0)
    await generateWorld({
      outDir: alignDir,
      seed: `${opts.seed}-align`,
      imageSize,
      grid,
      questionsPerImage: plan.questionsPerImage,
      counts: { train: plan.alignImages, val: 0, test: 0 },
      ...(plan.boxFormat ? { boxFormat: plan.boxFormat } : {}),
      minObjects: 1,
      maxObjects: 2,
    });
  const tokenizer = await writeWorldTokenizer(join(worldDir, 'tokenizer'));
  const preprocessorPath = join(worldDir, 'preprocessor_config.json');
  await writeFile(preprocessorPath, `${JSON.stringify(demoPreprocessorConfig(imageSize), null, 2)}\n`);
  // One question per sample unless the plan merges them: merged per image, later turns can read answers off earlier ones.
  const files = {
    align: join(alignDir, 'train.json'),
    instruct: plan.mergeTurns ? await writeMergedTrain(worldDir) : join(worldDir, 'train.json'),
  };
  const worldSeconds = seconds(worldStart);

  const imageTokenId = tokenizer.tokenToId('<image>');
  if (imageTokenId === undefined) throw new Error('vistune demo: the world tokenizer has no <image> token');
  const hf = demoLlavaConfig(plan.model, { vocabSize: tokenizer.vocabSize, imageTokenId });
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: preprocessorPath,
  })) as unknown as PixelProcessor;
  const loadImage = cachedImageLoader(processor);
  const model = await createModel(hf, registry, { seed: opts.seed });
  const imageTokens = model.slotsPerItem('image', [3, imageSize, imageSize]);
  try {
    const parameters = countParameters(model);
    const m = plan.model;
    log(
      `model: ViT ${m.visionHidden}-d × ${m.visionLayers} (${m.patchSize} px patches, pretrained in stage 0, then frozen) → ${m.projector} projector → ` +
        `LLaMA ${m.textHidden}-d × ${m.textLayers}; ${(parameters.total / 1e6).toFixed(2)} M parameters, ` +
        `${imageTokens} image tokens; all from scratch`,
    );

    opts.onStageStart?.(DEMO_STAGES.tower, plan.tower.steps);
    const trainStart = performance.now();
    const tower = await pretrainVisionTower(model, {
      worldDir,
      cellSize: plan.model.patchSize,
      loadImage,
      plan: plan.tower,
      seed: opts.seed,
      onStep: opts.onTowerStep,
    });
    log(`stage ${DEMO_STAGES.tower}: ${formatTowerSummary(tower.heldOut)}`);

    const loader = (file: string, batchSize: number) =>
      InstructionDataLoader.fromFiles({
        files: file,
        tokenizer,
        template: 'vicuna_v1',
        templateOptions: { systemPrompt: '' },
        imageToken: { id: imageTokenId, slots: imageTokens },
        maxLength: 512,
        batchSize,
        loadImage,
        seed: opts.seed,
        ...(plan.lengthGroupBatches
          ? { groupByLength: true, megabatchBatches: plan.lengthGroupBatches }
          : {}),
        ...(plan.lengthBuckets ? { lengthBuckets: plan.lengthBuckets } : {}),
      });

    // How long a step takes here decides how many fit the budget (no native kernels: ~4.5× longer).
    model.trainOnly(TRAINED_PARAMETERS);
    const probe = await loader(files.instruct, plan.instruct.batchSize);
    // A timed pass (still warming up) measured 65 ms where a whole Trainer step averaged 60: no extra margin.
    const stepSeconds = await timePasses(model, probe);
    probe.dispose();
    const steps = fitSteps(plan, stepSeconds);
    const plannedSteps = plan.align.steps + plan.instruct.steps;
    const calibration: StepCalibration = { stepSeconds, plannedSteps, steps: steps.align + steps.instruct };
    const timed = Number.isFinite(plan.trainBudgetSeconds)
      ? `; the ${plan.trainBudgetSeconds} s budget re-plans by the clock as training goes`
      : '';
    log(
      calibration.steps < plannedSteps
        ? `a training step takes ~${(1000 * stepSeconds).toFixed(0)} ms here: first estimate ${calibration.steps} of the planned ` +
            `${plannedSteps} steps${timed} (expect lower accuracy than the README's; ` +
            '`vistune backends` says whether the native kernels run)'
        : `a training step takes ~${(1000 * stepSeconds).toFixed(0)} ms here: all ${plannedSteps} planned steps fit${timed}`,
    );
    const runPlan: DemoPlan = {
      ...plan,
      align: { ...plan.align, steps: steps.align },
      instruct: { ...plan.instruct, steps: steps.instruct },
    };
    const workers = replicasAvailable() ? (opts.workers ?? defaultDemoWorkers(runPlan)) : 1;
    if (workers > 1)
      log(`stages ${DEMO_STAGES.align} and ${DEMO_STAGES.instruct}: ${workers} model replicas, one per core`);
    const recipe = demoRecipe(runPlan, hf, files, out, opts.seed, workers);
    const data = (stage: StageRecipe) =>
      loader(
        stage.name === DEMO_STAGES.align ? files.align : files.instruct,
        stage.batchSize ?? recipe.data.batchSize,
      );
    const trainer = new Trainer({
      model,
      recipe,
      data,
      saveModel: folderSaver(model, tokenizer, preprocessorPath),
      replica: cliReplica('demoReplicaModel', { config: hf, seed: opts.seed }),
      onStep: opts.onStep,
      onEvent: (event) => {
        if (event.type === 'stage-start') opts.onStageStart?.(event.stage, event.steps);
        else if (event.type === 'warning') log(`warning: ${event.message}`);
      },
    });
    // The demo owns its run folder: an earlier demo run there is moved aside (the trainer says where).
    const trained = await trainer.run({ overwrite: true });
    const trainSeconds = seconds(trainStart);
    const losses = recipe.stages.map((stage) => {
      const records = trained.metrics.filter((r) => r.stage === stage.name);
      return {
        stage: stage.name,
        steps: records.length,
        first: records[0]?.loss ?? Number.NaN,
        last: records[records.length - 1]?.loss ?? Number.NaN,
      };
    });

    const evalStart = performance.now();
    const test = await loadWorldSplit(join(worldDir, 'test.json'));
    const prompts = evalPrompts(test, tokenizer, { tokenId: imageTokenId, slots: imageTokens });
    log(`evaluating on ${test.length} held-out records (${prompts.length} answers)`);
    opts.onEvalStart?.(prompts.length);
    const predictions = await generateAnswers(model, prompts, {
      tokenizer,
      loadImage: (image) => loadImage(join(worldDir, image)),
      onProgress: opts.onEvalProgress,
    });
    const codec = new BoxCodec(plan.boxFormat);
    const metrics = demoMetrics(test, predictions, { codec });
    // The control: the same prompts, each with another held-out image; what the model gets right from the
    // question alone (priors such as "no" or "1") stays, what it reads off the image falls to chance.
    const shuffledPredictions = await generateAnswers(model, shuffledMedia(prompts), {
      tokenizer,
      loadImage: (image) => loadImage(join(worldDir, image)),
    });
    const shuffled = headline(demoMetrics(test, shuffledPredictions, { codec }));
    await writeFile(join(out, 'predictions.json'), `${JSON.stringify(predictions)}\n`);
    const samplesDir = join(out, 'samples');
    const samples = await sampleConversations(test, predictions, {
      worldDir,
      outDir: samplesDir,
      count: plan.samples,
      codec,
    });
    const evalSeconds = seconds(evalStart);

    const paths = {
      out,
      model: trained.modelDir ?? join(out, 'model'),
      metrics: join(out, 'metrics.jsonl'),
      lossPlot: join(out, 'loss.html'),
      report: join(out, 'report.json'),
      samples: samplesDir,
    };
    const result: DemoResult = {
      plan,
      seed: opts.seed,
      parameters,
      imageTokens: imageTokens,
      calibration,
      tower,
      budget: trained.budget,
      losses,
      metrics,
      shuffled,
      evalTurns: prompts.length,
      samples,
      seconds: { world: worldSeconds, train: trainSeconds, eval: evalSeconds, total: seconds(started) },
      paths,
    };
    await writeFile(paths.report, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    model.dispose();
  }
}
