// Wiring a recipe to the real pieces, for any model family: the model (a folder, or an inline config whose
// model_type picks the family), tokenizer, per-modality processors, the recipe's heads and task, the data
// loaders per stage, and the saved folder that generate/chat/eval load back.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import {
  type BatchSource,
  type ConversationTemplate,
  cachedMediaLoader,
  createModel,
  dataFileList,
  type HeadTargetsReader,
  type InstructionDataFileOptions,
  InstructionDataLoader,
  type MediaLoader,
  type MediaProcessor,
  type MultimodalModel,
  mediaOf,
  type Recipe,
  type Registry,
  readSamples,
  type StageRecipe,
  stageTemplate,
  type TaskFamily,
  Tokenizer,
} from '@vistune/core';
import { imageProcessorFromFile, loadModel, type VisionLanguageModel, wrapModel } from './api/model.js';
import { derivePreprocessor, withTokenizerVocabSize } from './recipe-defaults.js';
import { CliError } from './ui.js';

/** The task family of a recipe (`task: { type }`), created through the registry. */
export function recipeTask(recipe: Recipe, registry: Registry): TaskFamily | undefined {
  if (!recipe.task) return undefined;
  return registry.createSync('task', recipe.task, { path: 'task' }) as TaskFamily;
}

/** An image processor from a recipe's preprocessor_config.json (CLIP when the file names no type). */
export function imageProcessorFrom(path: string, registry: Registry): Promise<MediaProcessor> {
  return imageProcessorFromFile(path, registry, 'CLIPImageProcessor');
}

/**
 * An inline model config is a config.json object (a HF LlavaConfig, or a vistune composition with
 * `model_type: vistune`) plus `tokenizer` (a folder with tokenizer.json) and, for an image modality without a
 * processor in its config, `preprocessor` (a preprocessor_config.json), relative to the recipe. A missing
 * vocab_size is the tokenizer's size, a missing preprocessor is derived from the encoder (recipe-defaults.ts);
 * `onNote` hears about each.
 */
export async function modelForRecipe(
  recipe: Recipe,
  registry: Registry,
  recipeDir: string,
  opts: { allowNonfinite?: boolean; onNote?: (line: string) => void } = {},
): Promise<VisionLanguageModel> {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(recipeDir, p));
  const m = recipe.model;
  let vlm: VisionLanguageModel;
  if (m.kind === 'pretrained' || m.kind === 'path') {
    const dir = at(m.kind === 'pretrained' ? m.dir : m.path);
    if (!existsSync(join(dir, 'config.json')))
      throw new CliError(
        `${recipe.source}: model: ${dir} is not a model folder (no config.json); use { from: DIR } or an inline config`,
      );
    vlm = await loadModel(dir, { registry, allowNonfinite: opts.allowNonfinite });
  } else {
    const {
      tokenizer: tokDir,
      preprocessor,
      ...config
    } = m.config as { tokenizer?: string; preprocessor?: string };
    if (!tokDir)
      throw new CliError(
        `${recipe.source}: model.tokenizer: missing (a folder with tokenizer.json for a model built from a config)`,
      );
    const tokenizer = await Tokenizer.fromDir(at(tokDir));
    const sized = withTokenizerVocabSize(config, tokenizer.vocabSize, join(at(tokDir), 'tokenizer.json'));
    if (sized.note) opts.onNote?.(sized.note);
    const model = await createModel(withRecipePaths(sized.value, at), registry, {
      seed: recipe.seed,
      source: `${recipe.source}: model`,
      from: recipeDir,
    });
    const processors: Record<string, MediaProcessor> = {};
    try {
      for (const [name, spec] of model.modalities) {
        const id = spec.placeholderTokenId;
        if (tokenizer.idToToken(id) === undefined)
          throw new CliError(
            `${recipe.source}: model: modality '${name}' placeholder token ${id} is not a token of ${at(tokDir)}/tokenizer.json: add the token to the tokenizer`,
          );
        const kind = model.composition?.modalities[name]?.media ?? name;
        if (!model.composition?.modalities[name]?.processor && kind === 'image') {
          const derived = preprocessor ? undefined : derivePreprocessor(model, name);
          if (!preprocessor && !derived)
            throw new CliError(
              `${recipe.source}: model.preprocessor: missing (a preprocessor_config.json for the image modality, or modalities.${name}.processor; the encoder states no image_size to derive one from)`,
            );
          if (derived) opts.onNote?.(derived.note);
          processors[name] =
            derived?.kind === 'config'
              ? ((await registry.create('processor', derived.config)) as MediaProcessor)
              : await imageProcessorFrom(derived?.path ?? at(preprocessor as string), registry);
        }
      }
      vlm = await wrapModel(at(tokDir), model, tokenizer, registry, processors);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  try {
    await addRecipeHeads(vlm.model, recipe, registry);
    const task = recipeTask(recipe, registry);
    if (task?.prepareModel) {
      const prepared = await task.prepareModel({
        model: vlm.model,
        tokenizer: vlm.tokenizer,
        registry,
        config: recipe.task ?? { type: task.name },
      });
      if (prepared !== vlm.model)
        vlm = await wrapModel(vlm.dir, prepared, vlm.tokenizer, registry, processorsOf(vlm));
    }
    if (recipe.data.template || recipe.data.systemPrompt !== undefined) {
      const chat = { template: recipe.data.template, systemPrompt: recipe.data.systemPrompt };
      if (vlm.model.composition) vlm.model.composition = { ...vlm.model.composition, chat };
    }
    for (const kind of task?.media ?? [])
      if (![...vlm.modalities.values()].some((mod) => mod.kind.name === kind))
        throw new CliError(
          `${recipe.source}: task '${task?.name}' needs a '${kind}' modality; the model has none`,
        );
    return vlm;
  } catch (err) {
    vlm.dispose();
    throw err;
  }
}

/** A part's `pretrained` folder or an llm's `path` in an inline composition is relative to the recipe. */
export function withRecipePaths(
  config: Record<string, unknown>,
  at: (p: string) => string,
): Record<string, unknown> {
  const fix = (part: unknown, key: 'pretrained' | 'path') => {
    if (typeof part !== 'object' || part === null) return part;
    const value = (part as Record<string, unknown>)[key];
    return typeof value === 'string' ? { ...part, [key]: at(value) } : part;
  };
  const modalities = config.modalities as Record<string, Record<string, unknown>> | undefined;
  return {
    ...config,
    ...(config.llm ? { llm: fix(config.llm, 'path') } : {}),
    ...(modalities
      ? {
          modalities: Object.fromEntries(
            Object.entries(modalities).map(([name, m]) => [
              name,
              { ...m, encoder: fix(m.encoder, 'pretrained'), processor: fix(m.processor, 'pretrained') },
            ]),
          ),
        }
      : {}),
  };
}

function processorsOf(vlm: VisionLanguageModel): Record<string, MediaProcessor> {
  const out: Record<string, MediaProcessor> = {};
  for (const [name, m] of vlm.modalities) if (m.processor) out[name] = m.processor;
  return out;
}

/** The recipe's `heads:` through the registry; a head already on the model (loaded from its folder) is kept. */
async function addRecipeHeads(model: MultimodalModel, recipe: Recipe, registry: Registry): Promise<void> {
  for (const [i, config] of recipe.heads.entries()) {
    const head = (await registry.create('head', config, {
      path: `heads[${i}]`,
    })) as MultimodalModel['heads'][number];
    if (model.heads.some((h) => h.name === head.name)) {
      head.dispose();
      continue;
    }
    model.addHead(head);
  }
}

/** Media kind → placeholder token and slots, for every modality with a fixed item shape (from its processor). */
function mediaTokens(vlm: VisionLanguageModel, slots: Readonly<Record<string, number>>) {
  const tokens: Record<string, { id: number; slots: number; marker: string }> = {};
  const modalities: Record<string, string> = {};
  for (const m of vlm.modalities.values()) {
    tokens[m.kind.name] = { id: m.placeholderTokenId, slots: slots[m.name], marker: m.kind.marker };
    modalities[m.kind.name] = m.name;
  }
  return { tokens, modalities };
}

/** The first item of each media kind in the data files, in order (a text-only file may come first). */
async function firstItems(
  files: readonly string[],
  imageFolder: string | undefined,
  vlm: VisionLanguageModel,
): Promise<Record<string, string>> {
  const kinds = [...vlm.modalities.values()].map((m) => ({ name: m.kind.name, marker: m.kind.marker }));
  const found: Record<string, string> = {};
  for (const file of files) {
    for await (const result of readSamples(file, { imageFolder, mediaKinds: kinds })) {
      if (!result.ok) continue;
      for (const [kind, paths] of Object.entries(mediaOf(result.sample)))
        if (paths[0] && !(kind in found) && existsSync(paths[0])) found[kind] = paths[0];
      if (kinds.every((k) => k.name in found)) return found;
    }
  }
  return found;
}

/** Slots per item of each modality, measured on the first item of the training data that carries it. */
export async function slotsPerModality(
  vlm: VisionLanguageModel,
  recipe: Recipe,
  recipeDir: string,
): Promise<Record<string, number>> {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(recipeDir, p));
  const first = await firstItems(
    dataFileList(recipe.data.train).map(at),
    recipe.data.images && at(recipe.data.images),
    vlm,
  );
  const slots: Record<string, number> = {};
  for (const m of vlm.modalities.values()) {
    const path = first[m.kind.name];
    if (!path || !m.processor) {
      slots[m.name] = 1;
      continue;
    }
    const item = await m.processor.process(path);
    slots[m.name] = vlm.model.slotsPerItem(m.name, item.tensor.shape);
    item.tensor.dispose();
  }
  return slots;
}

export interface StageDataOptions {
  /** Fail on the first skipped record (CLI --strict). */
  strict?: boolean;
  /** Overrides data.maxSkipFraction (CLI --max-skip-fraction). */
  maxSkipFraction?: number;
  targets?: HeadTargetsReader;
  /** Build the held-out source from data.val instead of the training data. */
  validation?: boolean;
  /** Receives each loader (data statistics are printed from it). */
  onLoaded?: (loader: InstructionDataLoader, stage: StageRecipe) => void;
}

/**
 * Each media item through its modality's processor, decoded values kept for the whole run (data.mediaCacheMB):
 * one cache for every stage, so a later stage does not decode the same images again.
 */
function recipeMediaLoader(recipe: Recipe, vlm: VisionLanguageModel): MediaLoader {
  const modalityOf = (kind: string) => {
    for (const m of vlm.modalities.values()) if (m.kind.name === kind) return m;
    return vlm.modalities.get(kind);
  };
  return cachedMediaLoader(
    async (kind, path) => {
      const processor = modalityOf(kind)?.processor;
      if (!processor) throw new Error(`no processor for ${kind} items (${path})`);
      return (await processor.process(path)).tensor;
    },
    {
      maxBytes: recipe.data.mediaCacheMB * 2 ** 20,
      // A processor that samples at random (video frame offsets) declares it; its items are decoded each time.
      cacheable: (kind) => modalityOf(kind)?.processor?.deterministic !== false,
    },
  ).load;
}

/** The loader options of one stage: the stage's template, batch size and the recipe's data files, for every modality. */
function stageLoaderOptions(
  recipe: Recipe,
  vlm: VisionLanguageModel,
  recipeDir: string,
  slots: Readonly<Record<string, number>>,
  stage: StageRecipe,
  opts: StageDataOptions,
  loadMedia: MediaLoader,
): InstructionDataFileOptions {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(recipeDir, p));
  const template = vlm.registry.createSync(
    'template',
    {
      type: stageTemplate(recipe, stage),
      ...(recipe.data.systemPrompt === undefined ? {} : { systemPrompt: recipe.data.systemPrompt }),
    },
    { path: `stages.${stage.name}.template` },
  ) as ConversationTemplate;
  const { tokens, modalities } = mediaTokens(vlm, slots);
  return {
    files: dataFileList(recipe.data.train).map(at),
    imageFolder: recipe.data.images ? at(recipe.data.images) : undefined,
    tokenizer: vlm.tokenizer,
    template,
    mediaTokens: tokens,
    modalities,
    maxLength: recipe.data.maxLength,
    batchSize: stage.batchSize ?? recipe.data.batchSize,
    groupByLength: recipe.data.groupByLength,
    ...(recipe.data.lengthBuckets ? { lengthBuckets: recipe.data.lengthBuckets } : {}),
    seed: recipe.seed,
    strict: opts.strict ?? recipe.data.strict,
    maxSkipFraction: opts.maxSkipFraction ?? recipe.data.maxSkipFraction,
    targets: opts.targets,
    loadMedia,
  };
}

/**
 * The loader of one stage: the stage's template, batch size and the recipe's data files, for every modality.
 * With `validation`, the held-out source (the trainer's validationData): data.val read the same way but in file
 * order, batched by validation.batchSize (default the stage's).
 */
export function stageData(
  recipe: Recipe,
  vlm: VisionLanguageModel,
  recipeDir: string,
  slots: Readonly<Record<string, number>>,
  opts: StageDataOptions = {},
) {
  const loadMedia = recipeMediaLoader(recipe, vlm);
  return async (stage: StageRecipe): Promise<BatchSource> => {
    const options = stageLoaderOptions(recipe, vlm, recipeDir, slots, stage, opts, loadMedia);
    if (opts.validation) {
      if (!recipe.data.val)
        throw new CliError(
          `${recipe.source}: validation: needs data.val (a held-out data file like data.train)`,
        );
      const val = dataFileList(recipe.data.val).map((p) => (isAbsolute(p) ? p : resolve(recipeDir, p)));
      const batchSize = recipe.validation?.batchSize ?? options.batchSize;
      return InstructionDataLoader.validationFromFiles({ ...options, batchSize }, val);
    }
    const loader = await InstructionDataLoader.fromFiles(options);
    opts.onLoaded?.(loader, stage);
    return loader;
  };
}
