// What a recipe's inline model config may leave out because it follows from another file: vocab_size (the
// tokenizer's size) and an image modality's preprocessor (from its vision encoder's image size).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ComponentConfig, MultimodalModel } from '@vistune/core';

export interface Defaulted<T> {
  value: T;
  /** One line saying what was filled in and from where; absent when nothing was. */
  note?: string;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The inline config with the LLM's vocab_size set to the tokenizer's where it is missing: `llm.config.vocab_size`
 * for `model_type: vistune`, `text_config.vocab_size` for LLaVA configs. Other layouts are returned as they are.
 */
export function withTokenizerVocabSize(
  config: Record<string, unknown>,
  vocabSize: number,
  tokenizerFile: string,
): Defaulted<Record<string, unknown>> {
  const modelType = config.model_type ?? 'llava';
  const [field, holder] =
    modelType === 'vistune'
      ? ['llm.config', isObject(config.llm) ? config.llm.config : undefined]
      : modelType === 'llava'
        ? ['text_config', config.text_config]
        : [undefined, undefined];
  if (!field || !isObject(holder) || holder.vocab_size !== undefined) return { value: config };
  const filled = { ...holder, vocab_size: vocabSize };
  const value =
    field === 'text_config'
      ? { ...config, text_config: filled }
      : { ...config, llm: { ...(config.llm as Record<string, unknown>), config: filled } };
  return { value, note: `model.${field}.vocab_size: ${vocabSize}, the size of ${tokenizerFile}` };
}

/** How to build the image processor of a modality that names none. */
export type DerivedPreprocessor =
  | { kind: 'file'; path: string; note: string }
  | { kind: 'config'; config: ComponentConfig; note: string };

/**
 * The preprocessor an image modality gets when the recipe gives none: the encoder's pretrained folder's
 * preprocessor_config.json when it has one, else a processor sized to the encoder's image_size (SigLIP towers:
 * `siglip`, a fixed square resize with mean/std 0.5; every other encoder: `clip`, shortest-edge resize + center
 * crop with the CLIP mean/std). Undefined when the encoder states no image size.
 */
export function derivePreprocessor(
  model: MultimodalModel,
  modality: string,
): DerivedPreprocessor | undefined {
  const encoderConfig = model.composition?.modalities[modality]?.encoder as
    | Record<string, unknown>
    | undefined;
  const pretrained = encoderConfig?.pretrained;
  if (typeof pretrained === 'string' && existsSync(join(pretrained, 'preprocessor_config.json')))
    return {
      kind: 'file',
      path: join(pretrained, 'preprocessor_config.json'),
      note: `modalities.${modality}: preprocessor from ${join(pretrained, 'preprocessor_config.json')} (the encoder's pretrained folder)`,
    };
  const encoder = model.modalities.get(modality)?.encoder as
    | { imageSize?: unknown; config?: { modelType?: unknown } }
    | undefined;
  const size = encoder?.imageSize ?? encoderConfig?.image_size;
  if (typeof size !== 'number') return undefined;
  const where = `modalities.${modality}.encoder image_size ${size}`;
  if (encoder?.config?.modelType === 'siglip_vision_model')
    return {
      kind: 'config',
      config: { type: 'siglip', size: { height: size, width: size } },
      note: `modalities.${modality}: no preprocessor given; using siglip (resize to ${size}×${size}, mean/std 0.5) from ${where}`,
    };
  return {
    kind: 'config',
    config: { type: 'clip', size: { shortest_edge: size }, crop_size: { height: size, width: size } },
    note: `modalities.${modality}: no preprocessor given; using clip (shortest edge ${size}, center crop ${size}, CLIP mean/std) from ${where}`,
  };
}
