// A LISA-style recipe end to end: core's recipe format (YAML through loadRecipe) whose inline model config is
// any config.json createModel reads (a LlavaConfig, a vistune composition) plus `tokenizer`, `preprocessor` (as
// `vistune train` reads them) and `segHead` (the lisa_seg head config) → model + [SEG] head → core's Trainer
// on segmentation batches (with text stages and head calibration, which `vistune train` has not) → gIoU / cIoU.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  createModel,
  dataFileList,
  disposeMultimodalBatch,
  getTemplate,
  type MultimodalModel,
  type Recipe,
  type Registry,
  type StepMetrics,
  Tokenizer,
  Trainer,
  type TrainResult,
  tf,
} from '@vistune/core';
import type { ImageProcessor, ProcessedImage } from '@vistune/encoders';
import { binarizeLogits, MaskIoU, type MaskIoUResult } from '../metrics/index.js';
import {
  buildSegmentationExamples,
  type LoadedImage,
  SegmentationBatchSource,
  type SegmentationExample,
  type SegmentationImageLoader,
  type SegmentationRecord,
} from './data.js';
import type { LisaSegHead } from './head.js';
import {
  attachLisaHead,
  generateAndSegment,
  type LisaModel,
  type LisaSegHeadSettings,
  segmentText,
  triggerStates,
} from './model.js';
import { toOriginalFrame } from './resample.js';

/** The recipe's inline model config, as this runner reads it. */
interface LisaModelConfig {
  tokenizer?: string;
  preprocessor?: string;
  segHead?: LisaSegHeadSettings;
  /** Stages trained on the records without masks (visual instruction tuning first, as LISA starts from LLaVA). */
  textStages?: string[];
  /** Examples whose trigger states initialise text_hidden_fcs at the start of each segmentation stage (0: off). */
  calibrationExamples?: number;
  [hf: string]: unknown;
}

export interface LisaRun {
  model: MultimodalModel;
  head: LisaSegHead;
  tokenizer: Tokenizer;
  loadImage: SegmentationImageLoader;
  /** Builds examples from another split with the run's tokenizer, template and image token. */
  examples(
    file: string,
    imageFolder?: string,
  ): Promise<{ examples: SegmentationExample[]; skipped: string[] }>;
  /** Training batches of the segmentation stages (every training record) … */
  source: SegmentationBatchSource;
  /** … and of the text stages (the records without masks), when the recipe names text stages. */
  textSource: SegmentationBatchSource | null;
  textStages: ReadonlySet<string>;
  calibrationExamples: number;
  trainSkipped: string[];
}

/** An image loader over an encoders ImageProcessor, caching the processed pixels of each path. */
export function processorImageLoader(processor: ImageProcessor): SegmentationImageLoader {
  const cache = new Map<string, Promise<ProcessedImage>>();
  return async (path: string): Promise<LoadedImage> => {
    let processed = cache.get(path);
    if (!processed) {
      processed = processor.preprocess(path);
      cache.set(path, processed);
    }
    const p = await processed;
    return { pixels: tf.tensor3d(p.pixelValues, [3, p.height, p.width]), transform: p.transform };
  };
}

/** The image processor of a modality: its config in the model's composition, else the recipe's preprocessor file. */
async function imageProcessor(
  model: MultimodalModel,
  modality: string,
  preprocessor: string | undefined,
  registry: Registry,
  source: string,
): Promise<ImageProcessor> {
  const config = model.composition?.modalities[modality]?.processor;
  if (config) return (await registry.create('processor', config)) as ImageProcessor;
  if (!preprocessor)
    throw new Error(
      `${source}: model.preprocessor: missing (a preprocessor_config.json path, or modalities.${modality}.processor)`,
    );
  return (await registry.create('processor', { type: 'clip', pretrained: preprocessor })) as ImageProcessor;
}

/** Model, tokenizer, head and training data of a LISA recipe (nothing trained yet). */
export async function prepareLisaRun(recipe: Recipe, registry: Registry): Promise<LisaRun> {
  if (recipe.model.kind !== 'config')
    throw new Error(
      `${recipe.source}: model: the LISA runner builds its model from an inline config (a config.json object + tokenizer, preprocessor, segHead)`,
    );
  const baseDir = dirname(resolve(recipe.source));
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const {
    tokenizer: tokDir,
    preprocessor,
    segHead,
    textStages = [],
    calibrationExamples = 0,
    ...config
  } = recipe.model.config as LisaModelConfig;
  if (!tokDir) throw new Error(`${recipe.source}: model.tokenizer: missing (a folder with tokenizer.json)`);
  const unknownStages = textStages.filter((n) => !recipe.stages.some((s) => s.name === n));
  if (unknownStages.length)
    throw new Error(
      `${recipe.source}: model.textStages names ${unknownStages.join(', ')}, which the recipe's stages do not have`,
    );
  const tokenizer = await Tokenizer.fromDir(at(tokDir));
  const base = await createModel(config, registry, {
    seed: recipe.seed,
    source: `${recipe.source}: model`,
    from: baseDir,
  });
  const modality = segHead?.modality ?? 'image';
  let processor: ImageProcessor;
  let lisa: LisaModel;
  try {
    processor = await imageProcessor(
      base,
      modality,
      preprocessor && at(preprocessor),
      registry,
      recipe.source,
    );
    lisa = await attachLisaHead(base, tokenizer, registry, { head: segHead });
  } catch (err) {
    base.dispose();
    throw err;
  }
  const { model, head, segTokenId } = lisa;
  const loadImage = processorImageLoader(processor);
  const imageTokenId = model.placeholderTokenId(modality);
  const template = getTemplate(
    recipe.data.template,
    recipe.data.systemPrompt === undefined ? {} : { systemPrompt: recipe.data.systemPrompt },
  );
  // Placeholders per image, measured on the first image of the data (the processor fixes the size).
  let slots: number | undefined;
  const slotsPerImage = async (records: readonly SegmentationRecord[], folder: string) => {
    const first = records.find((r) => r.image);
    if (slots === undefined && first) {
      const image = await loadImage(isAbsolute(first.image) ? first.image : resolve(folder, first.image));
      slots = model.slotsPerItem(modality, image.pixels.shape);
      image.pixels.dispose();
    }
    return slots ?? 1;
  };
  const examples = async (file: string, imageFolder?: string) => {
    const records = JSON.parse(await readFile(file, 'utf8')) as SegmentationRecord[];
    const folder = imageFolder ?? dirname(file);
    return buildSegmentationExamples(records, {
      tokenizer,
      template,
      imageToken: { id: imageTokenId, slots: await slotsPerImage(records, folder) },
      segTokenId,
      maxLength: recipe.data.maxLength,
      imageFolder: folder,
      source: file,
    });
  };
  // data.train may list several files: their examples are read in order into one set.
  const trainFiles = dataFileList(recipe.data.train);
  const train = { examples: [] as SegmentationExample[], skipped: [] as string[] };
  for (const file of trainFiles) {
    const part = await examples(file, recipe.data.images);
    train.examples.push(...part.examples);
    train.skipped.push(...part.skipped);
  }
  const padTokenId = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const batches = (examples: SegmentationExample[]) =>
    new SegmentationBatchSource(examples, {
      batchSize: recipe.data.batchSize,
      padTokenId,
      loadImage,
      headName: head.name,
      seed: recipe.seed,
    });
  const textExamples = train.examples.filter((e) => e.masks.length === 0);
  if (textStages.length && textExamples.length === 0)
    throw new Error(
      `${recipe.source}: model.textStages is set but ${trainFiles.join(', ')} has no record without masks`,
    );
  return {
    model,
    head,
    tokenizer,
    loadImage,
    examples,
    source: batches(train.examples),
    textSource: textStages.length ? batches(textExamples) : null,
    textStages: new Set(textStages),
    calibrationExamples,
    trainSkipped: train.skipped,
  };
}

/**
 * Trains the prepared run with core's Trainer (stages, schedule, clipping, checkpoints, metrics.jsonl). Text
 * stages read the records without masks; when the first segmentation stage that trains the head starts, the
 * head's text projection is initialised from the current trigger states (calibrationExamples; not on resume).
 */
export async function trainLisa(
  recipe: Recipe,
  run: LisaRun,
  opts: { onStep?: (m: StepMetrics) => void; maxSteps?: number; resumeFrom?: string } = {},
): Promise<TrainResult> {
  // The calibration batch is decoded ahead: the Trainer's stage-start event is synchronous.
  let calibration =
    run.calibrationExamples > 0
      ? await run.source.collate(
          run.source.examples.filter((e) => e.masks.length > 0).slice(0, run.calibrationExamples),
        )
      : null;
  const trainer = new Trainer({
    model: run.model,
    recipe,
    data: (stage) => (run.textStages.has(stage.name) && run.textSource ? run.textSource : run.source),
    onStep: opts.onStep,
    onEvent: (event) => {
      if (event.type !== 'stage-start' || event.resumed || !calibration || run.textStages.has(event.stage))
        return;
      if (!run.head.textHiddenFcs[0]?.weight.trainable) return; // a stage that does not train the head keeps it
      const states = triggerStates(run.model, run.head, calibration);
      run.head.calibrateProjection(states);
      states.dispose();
      disposeMultimodalBatch(calibration);
      calibration = null; // once: later stages keep what the head has learnt
    },
  });
  try {
    return await trainer.run({ maxSteps: opts.maxSteps, resumeFrom: opts.resumeFrom });
  } finally {
    if (calibration) disposeMultimodalBatch(calibration);
  }
}

export interface SegmentationScores {
  /** LISA's validate(): the reference answer (with its [SEG]) is fed, masks read at its [SEG] tokens. */
  teacherForced: MaskIoUResult;
  /** Free generation, then masks at the generated [SEG]s; a missing mask scores an empty prediction. */
  generated?: MaskIoUResult & { samples: number; exactAnswers: number; missingMasks: number };
}

/** gIoU / cIoU on examples (original-resolution masks), teacher-forced and optionally generated. */
export async function evaluateSegmentation(
  run: Pick<LisaRun, 'model' | 'head' | 'tokenizer' | 'loadImage'>,
  examples: readonly SegmentationExample[],
  opts: { generate?: boolean; maxNewTokens?: number } = {},
): Promise<SegmentationScores> {
  const { model, head, tokenizer, loadImage } = run;
  const wasTraining = model.training;
  model.eval();
  const forced = new MaskIoU();
  const generated = new MaskIoU();
  let exactAnswers = 0;
  let missingMasks = 0;
  try {
    for (const ex of examples) {
      const image = await loadImage(ex.image);
      const media = { [head.options.modality]: [[image.pixels]] };
      try {
        const ids = tf.tensor2d([Array.from(ex.example.inputIds)], undefined, 'int32');
        const logits = segmentText(model, head, ids, media);
        ids.dispose();
        if (logits) {
          // buildSegmentationExamples checked that the ids hold one [SEG] per mask.
          const [, H, W] = logits.shape;
          ex.masks.forEach((m, k) => {
            const values = tf.tidy(() =>
              toOriginalFrame(tf.slice(logits, [k, 0, 0], [1, H, W]) as tf.Tensor3D, [H, W], {
                ...m,
                transform: image.transform,
              }).dataSync(),
            );
            forced.add(binarizeLogits(values, m.width, m.height), {
              data: Uint8Array.from(m.mask),
              width: m.width,
              height: m.height,
            });
          });
          logits.dispose();
        }
        if (!opts.generate) continue;
        const prompt = Array.from(ex.example.inputIds.subarray(0, ex.promptLength));
        const answer = Array.from(ex.example.inputIds.subarray(ex.promptLength)).filter(
          (id) => id !== tokenizer.eosTokenId,
        );
        const frame = {
          width: ex.masks[0]?.width ?? 0,
          height: ex.masks[0]?.height ?? 0,
          transform: image.transform,
        };
        const out = generateAndSegment(model, head, prompt, media, frame, {
          maxNewTokens: opts.maxNewTokens ?? 16,
          eosTokenIds: tokenizer.eosTokenIds,
        });
        const produced = out.ids.filter((id) => id !== tokenizer.eosTokenId);
        if (produced.length === answer.length && produced.every((id, i) => id === answer[i])) exactAnswers++;
        ex.masks.forEach((m, k) => {
          const pred = out.masks[k];
          if (!pred) missingMasks++;
          generated.add(
            { data: pred ?? new Uint8Array(m.width * m.height), width: m.width, height: m.height },
            { data: Uint8Array.from(m.mask), width: m.width, height: m.height },
          );
        });
      } finally {
        image.pixels.dispose();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return {
    teacherForced: forced.result(),
    generated: opts.generate
      ? { ...generated.result(), samples: examples.length, exactAnswers, missingMasks }
      : undefined,
  };
}
