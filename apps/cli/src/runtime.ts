// Wiring for commands that run a model folder: load model + tokenizer (+ image processor), build prompts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ChatMessage,
  expandPlaceholders,
  type GenerateInput,
  type GenerateOptions,
  type LlamaForCausalLM,
  LlavaForConditionalGeneration,
  loadCausalLM,
  loadLlava,
  type MediaInputs,
  type Registry,
  readJsonFile,
  Tokenizer,
  tf,
} from '@vistune/core';
import type { ImageProcessor, ImageTransform } from '@vistune/encoders';
import { CliError } from './ui.js';

export interface LoadedModel {
  dir: string;
  model: LlavaForConditionalGeneration | LlamaForCausalLM;
  tokenizer: Tokenizer;
  processor?: ImageProcessor;
  imageToken?: { id: number; text: string; slots: number };
  /** preprocessor_config.json when it is not in `dir` (models built from a config). */
  preprocessorPath?: string;
}

/** Loads a HF-format folder: a LLaVA checkpoint (model_type llava) or a plain causal LM. */
export async function loadModelDir(dir: string, registry: Registry): Promise<LoadedModel> {
  if (!existsSync(join(dir, 'config.json'))) {
    throw new CliError(
      `${join(dir, 'config.json')} not found: --model must be a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)`,
    );
  }
  const config = (await readJsonFile(join(dir, 'config.json'), 'model config')) as { model_type?: string };
  const tokenizer = await Tokenizer.fromDir(dir);
  if (config.model_type !== 'llava') {
    const llm = await loadCausalLM(dir);
    checkVocabulary(dir, tokenizer, llm);
    return { dir, model: llm, tokenizer };
  }
  const model = await loadLlava(dir, registry);
  checkVocabulary(dir, tokenizer, model.llm);
  const processor = (await registry.create('processor', {
    type: 'clip',
    pretrained: dir,
  })) as ImageProcessor;
  const text = tokenizer.idToToken(model.config.imageTokenId) ?? '<image>';
  return {
    dir,
    model,
    tokenizer,
    processor,
    imageToken: { id: model.config.imageTokenId, text, slots: model.imageSeqLength },
  };
}

/** Every token id the tokenizer can produce must have an embedding row. */
function checkVocabulary(dir: string, tokenizer: Tokenizer, llm: LlamaForCausalLM): void {
  if (tokenizer.vocabSize > llm.vocabSize) {
    llm.dispose();
    throw new CliError(
      `${join(dir, 'tokenizer.json')} has ${tokenizer.vocabSize} tokens but ${join(dir, 'config.json')} vocab_size is ${llm.vocabSize}: ` +
        'use the tokenizer the model was trained with, or resize the embeddings (resizeTokenEmbeddings in @vistune/tasks-grounding)',
    );
  }
}

export interface PreparedPrompt {
  prompt: string;
  inputIds: number[];
  images: tf.Tensor3D[];
  /** Per image: original ↔ processed pixel coordinates (for box codecs). */
  transforms: ImageTransform[];
}

/** Renders the chat template over the conversation, tokenizes, expands image placeholders and preprocesses images. */
export async function preparePrompt(
  loaded: LoadedModel,
  messages: readonly ChatMessage[],
  imagePaths: readonly string[],
): Promise<PreparedPrompt> {
  if (imagePaths.length && !loaded.processor) {
    throw new CliError(`${loaded.dir} is a text-only model: it cannot take --image (use a LLaVA folder)`);
  }
  const prompt = loaded.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  let inputIds = loaded.tokenizer.encode(prompt);
  const images: tf.Tensor3D[] = [];
  const transforms: ImageTransform[] = [];
  if (loaded.imageToken && loaded.processor) {
    const count = inputIds.filter((id) => id === loaded.imageToken?.id).length;
    if (count !== imagePaths.length) {
      throw new CliError(
        `the prompt has ${count} ${loaded.imageToken.text} placeholders but ${imagePaths.length} images were given`,
      );
    }
    inputIds = expandPlaceholders(
      inputIds,
      loaded.imageToken.id,
      imagePaths.map(() => loaded.imageToken?.slots ?? 0),
    );
    for (const path of imagePaths) {
      if (!existsSync(path)) throw new CliError(`image not found: ${path}`);
      const p = await loaded.processor.preprocess(path);
      images.push(tf.tensor3d(p.pixelValues, [3, p.height, p.width]));
      transforms.push(p.transform);
    }
  }
  return { prompt, inputIds, images, transforms };
}

/** One user turn: images first, then the text (LLaVA processors' convention). */
export function userMessage(text: string, imageCount: number): ChatMessage {
  return {
    role: 'user',
    content: [
      ...Array.from({ length: imageCount }, () => ({ type: 'image' as const })),
      { type: 'text' as const, text },
    ],
  };
}

/** Generation inputs for either model kind, as the arguments of core's generateStream. */
export function generationInputs(
  loaded: LoadedModel,
  prepared: PreparedPrompt,
): {
  input: GenerateInput;
  dispose: () => void;
} {
  const ids = tf.tensor2d([prepared.inputIds], [1, prepared.inputIds.length], 'int32');
  if (loaded.model instanceof LlavaForConditionalGeneration) {
    const media: MediaInputs = { image: [prepared.images] };
    const { inputsEmbeds, attentionMask } = loaded.model.prepareGeneration(
      ids,
      prepared.images.length ? media : {},
    );
    ids.dispose();
    return {
      input: { inputsEmbeds, attentionMask, promptIds: [prepared.inputIds] },
      dispose: () => tf.dispose([inputsEmbeds, attentionMask, ...prepared.images]),
    };
  }
  ids.dispose();
  return { input: { inputIds: [prepared.inputIds] }, dispose: () => tf.dispose(prepared.images) };
}

/** The decoder that generates for a loaded model. */
export function decoderOf(loaded: LoadedModel): LlamaForCausalLM {
  return loaded.model instanceof LlavaForConditionalGeneration ? loaded.model.llm : loaded.model;
}

export interface SamplingFlags {
  maxNewTokens: string;
  temperature: string;
  topP?: string;
  topK?: string;
  repetitionPenalty?: string;
  seed?: string;
  stop?: string[];
  eos: boolean;
}

/** CLI flags → GenerateOptions; temperature 0 means greedy. */
export function generateOptions(flags: SamplingFlags, tokenizer: Tokenizer): GenerateOptions {
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got "${v}"`, 2);
    return n;
  };
  const temperature = num(flags.temperature, 'temperature') ?? 0;
  return {
    maxNewTokens: num(flags.maxNewTokens, 'max-new-tokens'),
    doSample: temperature > 0,
    temperature: temperature > 0 ? temperature : undefined,
    topP: num(flags.topP, 'top-p'),
    topK: num(flags.topK, 'top-k'),
    repetitionPenalty: num(flags.repetitionPenalty, 'repetition-penalty'),
    seed: num(flags.seed, 'seed'),
    stopStrings: flags.stop,
    eosTokenIds: flags.eos ? tokenizer.eosTokenIds : [],
    decode: (ids) => tokenizer.decode([...ids], { skipSpecialTokens: true }),
  };
}
