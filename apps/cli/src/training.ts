// Wiring a recipe to the real pieces: model (from a HF folder or an inline config), tokenizer, image
// processor, data loaders per stage, and the saved model folder that generate/chat/eval can load.

import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import {
  type BatchSource,
  createLlava,
  InstructionDataLoader,
  LlavaForConditionalGeneration,
  type Recipe,
  type Registry,
  type StageRecipe,
  saveLlava,
  stageTemplate,
  type TemplateName,
  Tokenizer,
  tf,
} from '@vistune/core';
import type { ImageProcessor } from '@vistune/encoders';
import { type LoadedModel, loadModelDir } from './runtime.js';
import { CliError } from './ui.js';

/**
 * An inline model config is a HF LlavaConfig (text_config, vision_config, image_token_index, …) plus
 * `tokenizer` (a folder with tokenizer.json) and `preprocessor` (a preprocessor_config.json), relative to the recipe.
 */
export async function modelForRecipe(
  recipe: Recipe,
  registry: Registry,
  recipeDir: string,
): Promise<LoadedModel> {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(recipeDir, p));
  const m = recipe.model;
  if (m.kind === 'pretrained') return loadModelDir(at(m.dir), registry);
  if (m.kind === 'path') {
    const p = at(m.path);
    if (existsSync(join(p, 'config.json'))) return loadModelDir(p, registry);
    throw new CliError(
      `${recipe.source}: model: ${p} is not a model folder (no config.json); use { from: DIR } or an inline config`,
    );
  }
  const {
    tokenizer: tokDir,
    preprocessor,
    ...hf
  } = m.config as { tokenizer?: string; preprocessor?: string };
  if (!tokDir)
    throw new CliError(
      `${recipe.source}: model.tokenizer: missing (a folder with tokenizer.json for a model built from a config)`,
    );
  if (!preprocessor)
    throw new CliError(`${recipe.source}: model.preprocessor: missing (a preprocessor_config.json path)`);
  const tokenizer = await Tokenizer.fromDir(at(tokDir));
  const model = await createLlava(hf, registry, { seed: recipe.seed });
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: at(preprocessor),
  })) as ImageProcessor;
  const id = model.config.imageTokenId;
  const text = tokenizer.idToToken(id);
  if (text === undefined || text === null) {
    model.dispose();
    throw new CliError(
      `${recipe.source}: model.image_token_index ${id} is not a token of ${at(tokDir)}/tokenizer.json: add the image token to the tokenizer`,
    );
  }
  return {
    dir: at(tokDir),
    model,
    tokenizer,
    processor,
    imageToken: { id, text, slots: model.imageSeqLength },
    preprocessorPath: at(preprocessor),
  };
}

/** The loader of one stage: the stage's template, batch size and the recipe's data files. */
export function stageData(recipe: Recipe, loaded: LoadedModel, recipeDir: string) {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(recipeDir, p));
  return async (stage: StageRecipe): Promise<BatchSource> => {
    const { processor, imageToken } = loaded;
    if (!processor || !imageToken)
      throw new CliError(`${recipe.source}: training needs a multimodal (LLaVA) model`);
    const template = stageTemplate(recipe, stage) as TemplateName;
    return InstructionDataLoader.fromFiles({
      files: at(recipe.data.train),
      imageFolder: recipe.data.images ? at(recipe.data.images) : undefined,
      tokenizer: loaded.tokenizer,
      template,
      templateOptions:
        recipe.data.systemPrompt === undefined ? undefined : { systemPrompt: recipe.data.systemPrompt },
      imageToken: { id: imageToken.id, slots: imageToken.slots },
      maxLength: recipe.data.maxLength,
      batchSize: stage.batchSize ?? recipe.data.batchSize,
      groupByLength: recipe.data.groupByLength,
      seed: recipe.seed,
      loadImage: async (path) => {
        const p = await processor.preprocess(path);
        return tf.tensor3d(p.pixelValues, [3, p.height, p.width]);
      },
    });
  };
}

/** saveLlava plus what loading for generation needs: tokenizer files and the preprocessor config. */
export function modelSaver(loaded: LoadedModel) {
  return async (model: unknown, dir: string): Promise<void> => {
    if (!(model instanceof LlavaForConditionalGeneration))
      throw new Error('only LLaVA models are saved by vistune train');
    await saveLlava(model, dir);
    await loaded.tokenizer.saveTo(dir);
    const pre = loaded.preprocessorPath ?? join(loaded.dir, 'preprocessor_config.json');
    if (!existsSync(pre))
      throw new Error(`${pre} not found: the saved model needs the image preprocessor config`);
    await copyFile(pre, join(dir, 'preprocessor_config.json'));
  };
}
