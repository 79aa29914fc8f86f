// HF LlavaForConditionalGeneration folders ↔ MultimodalModel: config.json (text_config + vision_config),
// safetensors with legacy (`language_model.model.*`) or new (`model.language_model.*`) names.
// The vision tower and projector come from the registry (core does not import encoders/adapters).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { readJsonFile } from '../io/json.js';
import { saveShardedSafetensors } from '../io/safetensors-write.js';
import { loadSafetensorsDir } from '../io/sharded.js';
import { type LlamaConfig, llamaConfigToHf } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { decoderConfigFromJson } from '../llm/weights.js';
import type { Module } from '../nn/module.js';
import {
  acceptedFields,
  checkComponent,
  type ModelFamily,
  type SaveModelOptions,
} from '../pipeline/family.js';
import {
  chatFromJson,
  chatSettingsSchema,
  chatToJson,
  pluginsUsed,
  writeLlavaProcessorConfig,
} from '../pipeline/saved.js';
import type { ChatSettings, CompositionConfig } from '../pipeline/types.js';
import type { ComponentConfig, Registry } from '../registry/types.js';
import { formatZodIssues } from '../registry/zod-issues.js';
import { MultimodalModel } from './model.js';
import { selectedFeatureDim } from './select.js';
import type { Adapter, FeatureSelect, Head, HeadConfig, ModalityEncoder } from './types.js';

const llavaConfigSchema = z.looseObject({
  model_type: z
    .literal('llava', { message: 'expected "llava" (a LlavaForConditionalGeneration folder)' })
    .optional(),
  image_token_index: z.number().int().optional(),
  image_token_id: z.number().int().optional(),
  vision_feature_layer: z.union([z.number().int(), z.array(z.number().int()).min(1)]).default(-2),
  vision_feature_select_strategy: z.enum(['default', 'full']).default('default'),
  projector_hidden_act: z.string().default('gelu'),
  multimodal_projector_bias: z.boolean().default(true),
  /** Original LLaVA's projector name; any registered adapter (HF checkpoints have no key: mlp2x_gelu). */
  mm_projector_type: z.string().min(1).default('mlp2x_gelu'),
  image_seq_length: z.number().int().positive().optional(),
  text_config: z.looseObject({}),
  /** Any encoder entry that declares this model_type in its HfBinding (clip_vision_model, siglip_vision_model, …). */
  vision_config: z.looseObject({
    model_type: z.string().min(1).default('clip_vision_model'),
  }),
  /** vistune's output heads (registry kind `head`), their weights under `heads.<name>.*`. */
  vistune_heads: z.array(z.looseObject({ type: z.string().min(1) })).default([]),
  /** Plugins whose entries the model uses (package names or paths), loaded before its parts are created. */
  vistune_plugins: z.array(z.string().min(1)).default([]),
  /** Template and system prompt the model was trained with. */
  vistune_chat: chatSettingsSchema.optional(),
});

export interface LlavaConfig {
  imageTokenId: number;
  select: FeatureSelect;
  projectorHiddenAct: string;
  projectorBias: boolean;
  /** Registry name of the projector adapter (`mm_projector_type`). */
  projectorType: string;
  /** Placeholders per image the processor emits, when the config states it (checked against the model). */
  imageSeqLength?: number;
  text: LlamaConfig;
  /** The HF vision_config as given (model_type filled in). */
  vision: Record<string, unknown>;
  /** Registry configs of the output heads saved with the model (config.json `vistune_heads`). */
  heads: HeadConfig[];
  /** config.json `vistune_plugins`. */
  plugins: string[];
  /** config.json `vistune_chat`: the template and system prompt it was trained with. */
  chat?: ChatSettings;
  /** The whole config.json object, written back on save with text_config refreshed. */
  hf: Record<string, unknown>;
}

/** Parses a LLaVA config.json object; errors name `source` and the field. */
export function parseLlavaConfig(json: unknown, source = 'config.json'): LlavaConfig {
  const parsed = llavaConfigSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(`${source} is not a LLaVA config:\n  ${formatZodIssues(parsed.error).join('\n  ')}`);
  const c = parsed.data;
  const text = decoderConfigFromJson(json, source);
  const imageTokenId = c.image_token_index ?? c.image_token_id ?? 32000;
  return {
    imageTokenId,
    select: { layer: c.vision_feature_layer, strategy: c.vision_feature_select_strategy },
    projectorHiddenAct: c.projector_hidden_act,
    projectorBias: c.multimodal_projector_bias,
    projectorType: c.mm_projector_type,
    imageSeqLength: c.image_seq_length,
    text,
    vision: c.vision_config,
    heads: c.vistune_heads,
    plugins: c.vistune_plugins,
    chat: chatFromJson(c.vistune_chat),
    hf: json as Record<string, unknown>,
  };
}

/**
 * The composition of a LLaVA checkpoint: modality `image` (vision tower + projector) and a LLaMA-family LLM,
 * plus optional output heads (saved under `heads.*` with their configs in config.json `vistune_heads`).
 */
export class LlavaForConditionalGeneration extends MultimodalModel {
  declare readonly llm: LlamaForCausalLM;

  constructor(
    readonly config: LlavaConfig,
    llm: LlamaForCausalLM,
    encoder: ModalityEncoder<unknown>,
    adapter: Adapter,
    heads: readonly Head<unknown, tf.TensorContainer>[] = [],
  ) {
    super({
      llm,
      modalities: {
        image: { placeholderTokenId: config.imageTokenId, encoder, select: config.select, adapter },
      },
      heads,
    });
    if (config.imageTokenId >= llm.vocabSize)
      throw new Error(
        `config.json image_token_index ${config.imageTokenId} is outside the text vocabulary (text_config.vocab_size ${llm.vocabSize}): ` +
          'set it to the id of the image token in tokenizer.json, or resize the embeddings',
      );
    const image = config.vision as { num_channels?: number; image_size?: number };
    const size = image.image_size ?? 224;
    this.imageSeqLength = this.slotsPerItem('image', [image.num_channels ?? 3, size, size]);
    if (config.imageSeqLength !== undefined && config.imageSeqLength !== this.imageSeqLength) {
      throw new Error(
        `config.json image_seq_length is ${config.imageSeqLength} but the vision tower and vision_feature_select_strategy ` +
          `give ${this.imageSeqLength} tokens per ${size}px image: fix image_seq_length or the vision config`,
      );
    }
  }

  /** Placeholder tokens per image (LlavaProcessor's num_image_tokens). */
  readonly imageSeqLength: number;
}

export interface CreateLlavaOptions {
  /** Seed of the random init; the LLM, tower and projector get seed, seed + 1, seed + 2. Default 0. */
  seed?: number;
  /** Names the config in errors. */
  source?: string;
}

/** The encoder entry that reads vision_config.model_type (registered by @vistune/encoders or a plugin). */
function visionEntry(config: LlavaConfig, registry: Registry) {
  const modelType = String(config.vision.model_type);
  const entry = registry.findHf('encoder', modelType);
  if (entry) return entry;
  const known = registry
    .list('encoder')
    .flatMap((e) => e.hfTypes ?? [])
    .join(', ');
  throw new Error(
    `vision_config.model_type '${modelType}' is read by no registered encoder (known: ${known || 'none'}); ` +
      'load the plugin that registers it (--plugin, or "vistune_plugins" in config.json)',
  );
}

/** The encoder config (HF vision_config fields → entry config) for a random init. */
function encoderConfigFromHf(config: LlavaConfig, registry: Registry): Record<string, unknown> {
  const entry = visionEntry(config, registry);
  const { model_type: _type, ...fields } = config.vision;
  return { type: entry.name, ...(entry.hf?.fromHf ? entry.hf.fromHf(config.vision) : fields) };
}

async function createParts(
  config: LlavaConfig,
  registry: Registry,
  encoderConfig: Record<string, unknown>,
  seed?: number,
) {
  const encoder = checkComponent<ModalityEncoder<unknown>>(
    await registry.create('encoder', encoderConfig, { path: 'vision_config' }),
    ['forward', 'featureLayout', 'namedParameters'],
    `encoder '${String(encoderConfig.type)}'`,
  );
  try {
    const adapterEntry = registry.get('adapter', config.projectorType);
    const adapterConfig = {
      type: config.projectorType,
      inDim: selectedFeatureDim(encoder.hiddenSize, config.select),
      outDim: config.text.hiddenSize,
      // linear and pixel_shuffle projectors have no activation
      ...acceptedFields(adapterEntry, {
        act: config.projectorHiddenAct,
        bias: config.projectorBias,
        ...(seed === undefined ? {} : { seed }),
      }),
    };
    const adapter = checkComponent<Adapter>(
      await registry.create('adapter', adapterConfig, { path: 'multi_modal_projector' }),
      ['forward', 'numSlots', 'namedParameters', 'loadStateDict'],
      `adapter '${config.projectorType}'`,
    );
    return { encoder, adapter, encoderConfig, adapterConfig };
  } catch (err) {
    encoder.dispose();
    throw err;
  }
}

/** A randomly initialised LLaVA from a config.json-shaped object (text_config, vision_config, …). */
export async function createLlava(
  json: unknown,
  registry: Registry,
  opts: CreateLlavaOptions = {},
): Promise<LlavaForConditionalGeneration> {
  const config = parseLlavaConfig(json, opts.source ?? 'createLlava config');
  const seed = opts.seed ?? 0;
  const { encoder, adapter, encoderConfig, adapterConfig } = await createParts(
    config,
    registry,
    { ...encoderConfigFromHf(config, registry), seed: seed + 1 },
    seed + 2,
  );
  let llm: LlamaForCausalLM;
  try {
    llm = await createLlavaLlm(registry, config, { config: llamaConfigToHf(config.text), seed });
  } catch (err) {
    encoder.dispose();
    adapter.dispose();
    throw err;
  }
  const model = new LlavaForConditionalGeneration(config, llm, encoder, adapter);
  bindLlava(model, registry, encoderConfig, adapterConfig);
  return model;
}

/** The decoder of a LLaVA through the registry (text_config.model_type names the llm entry). */
async function createLlavaLlm(
  registry: Registry,
  config: LlavaConfig,
  source: { config: Record<string, unknown>; seed: number } | { path: string },
): Promise<LlamaForCausalLM> {
  const llm = await registry.create(
    'llm',
    { type: config.text.modelType, ...source },
    { path: 'text_config' },
  );
  if (!(llm instanceof LlamaForCausalLM)) {
    (llm as { dispose?: () => void } | null)?.dispose?.();
    throw new Error(
      `text_config.model_type '${config.text.modelType}': a LLaVA folder needs a LLaMA-family decoder; save other decoders with the vistune family`,
    );
  }
  return llm;
}

/** Records the family and the parts' registry configs on a LLaVA model (what saving and the CLI read). */
function bindLlava(
  model: LlavaForConditionalGeneration,
  registry: Registry,
  encoderConfig: Record<string, unknown>,
  adapterConfig: Record<string, unknown>,
): void {
  const { config } = model;
  const { pretrained: _pretrained, ...encoder } = encoderConfig;
  const composition: CompositionConfig = {
    llm: { type: config.text.modelType, config: llamaConfigToHf(config.text) },
    modalities: {
      image: {
        media: 'image',
        placeholderTokenId: config.imageTokenId,
        encoder: encoder as ComponentConfig,
        select: config.select,
        adapter: adapterConfig as ComponentConfig,
      },
    },
    heads: config.heads,
    plugins: [],
    chat: config.chat,
  };
  model.family = llavaFamily;
  model.composition = { ...composition, plugins: pluginsUsed(registry, composition, config.plugins) };
}

/** HF LlavaForConditionalGeneration folders (config.json model_type `llava`). */
export const llavaFamily: ModelFamily = {
  name: 'llava',
  create: (config, registry, opts) => createLlava(config, registry, opts),
  load: (dir, registry) => loadLlava(dir, registry),
  save: async (model, dir, opts) => {
    if (!(model instanceof LlavaForConditionalGeneration))
      throw new Error('the llava family saves LlavaForConditionalGeneration models only');
    await saveLlava(model, dir, opts);
  },
  checkpointName: (param) => llavaCheckpointName(param),
};

/** Checkpoint prefix of output heads' parameters (`heads.<name>.*`, as MultimodalModel names them). */
const HEAD_PREFIX = 'heads.';

/** Checkpoint prefixes of the projector, newest naming last (original LLaVA: model.mm_projector.{0,2}). */
const PROJECTOR_PREFIXES = ['multi_modal_projector.', 'model.multi_modal_projector.', 'model.mm_projector.'];

/** Loads a HF LlavaForConditionalGeneration folder (legacy or new weight names, single file or shards). */
export async function loadLlava(dir: string, registry: Registry): Promise<LlavaForConditionalGeneration> {
  const configPath = join(dir, 'config.json');
  const config = parseLlavaConfig(
    await readJsonFile(configPath, 'LLaVA config', {
      hint: 'expected a LlavaForConditionalGeneration folder',
    }),
    configPath,
  );
  const llm = await createLlavaLlm(registry, config, { path: dir });
  let parts: Awaited<ReturnType<typeof createParts>> | undefined;
  let heads: Head<unknown, tf.TensorContainer>[] = [];
  try {
    parts = await createParts(config, registry, {
      type: visionEntry(config, registry).name,
      pretrained: dir,
    });
    const weights = await loadSafetensorsDir(dir, {
      names: (n) => PROJECTOR_PREFIXES.some((p) => n.startsWith(p)),
    });
    try {
      const prefix = PROJECTOR_PREFIXES.find((p) => [...weights.keys()].some((n) => n.startsWith(p)));
      if (!prefix)
        throw new Error(
          `${dir}: no projector weights (expected ${PROJECTOR_PREFIXES.map((p) => `${p}*`).join(' or ')})`,
        );
      const own = new Map(
        [...weights].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t]),
      );
      parts.adapter.loadStateDict(own, { source: `${dir} (${prefix}*)` });
    } finally {
      for (const t of weights.values()) t.dispose();
    }
    heads = await loadHeads(dir, config, registry, parts.encoder);
    const model = new LlavaForConditionalGeneration(config, llm, parts.encoder, parts.adapter, heads);
    bindLlava(model, registry, encoderConfigFromHf(config, registry), parts.adapterConfig);
    return model;
  } catch (err) {
    llm.dispose();
    parts?.encoder.dispose();
    parts?.adapter.dispose();
    for (const head of heads) head.dispose();
    throw err;
  }
}

/** The heads of config.json `vistune_heads`: created through the registry, bound to the image modality, loaded. */
async function loadHeads(
  dir: string,
  config: LlavaConfig,
  registry: Registry,
  encoder: ModalityEncoder<unknown>,
): Promise<Head<unknown, tf.TensorContainer>[]> {
  const heads: Head<unknown, tf.TensorContainer>[] = [];
  if (config.heads.length === 0) return heads;
  const weights = await loadSafetensorsDir(dir, { names: (n) => n.startsWith(HEAD_PREFIX) });
  try {
    for (const [i, headConfig] of config.heads.entries()) {
      const head = checkComponent<Head<unknown, tf.TensorContainer>>(
        await registry.create('head', headConfig, { path: `vistune_heads[${i}]` }),
        ['forward', 'namedParameters', 'loadStateDict'],
        `head '${headConfig.type}'`,
      );
      heads.push(head);
      head.bindModalities?.(new Map([['image', { encoder }]]));
      const prefix = `${HEAD_PREFIX}${head.name}.`;
      const own = new Map(
        [...weights].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t]),
      );
      head.loadStateDict(own, { source: `${dir} (${prefix}*)` });
    }
    return heads;
  } catch (err) {
    for (const head of heads) head.dispose();
    throw err;
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

/** 'legacy' names (default; what most hub checkpoints hold): language_model.model.*, vision_tower.*,
 * multi_modal_projector.*; 'new' (transformers ≥ 4.52): model.language_model.*, lm_head.weight, model.vision_tower.*. */
export type SaveLlavaOptions = SaveModelOptions;

/** HF checkpoint name of a MultimodalModel parameter of a LLaVA composition. */
export function llavaCheckpointName(param: string, names: 'legacy' | 'new' = 'legacy'): string {
  const legacy = names === 'legacy';
  const rules: [string, string][] = [
    ['llm.model.', legacy ? 'language_model.model.' : 'model.language_model.'],
    ['llm.lm_head.', legacy ? 'language_model.lm_head.' : 'lm_head.'],
    ['modalities.image.encoder.', legacy ? 'vision_tower.' : 'model.vision_tower.'],
    ['modalities.image.adapter.', legacy ? 'multi_modal_projector.' : 'model.multi_modal_projector.'],
    [HEAD_PREFIX, HEAD_PREFIX],
  ];
  for (const [from, to] of rules) if (param.startsWith(from)) return to + param.slice(from.length);
  throw new Error(
    `saveLlava: parameter ${param} has no place in a LLaVA checkpoint (extra modalities cannot be saved in this format)`,
  );
}

/** Writes config.json + model.safetensors (or shards) in HF LlavaForConditionalGeneration layout. */
export async function saveLlava(
  model: LlavaForConditionalGeneration,
  dir: string,
  opts: SaveLlavaOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const heads = model.heads.map((head) => {
    if (!head.headConfig)
      throw new Error(
        `saveLlava: head ${head.name} has no headConfig(): it cannot be recreated on load; save the model without it`,
      );
    return head.headConfig();
  });
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, p] of (model as Module).namedParameters())
    tensors.set(llavaCheckpointName(name, opts.names), p);
  await mkdir(dir, { recursive: true });
  await saveShardedSafetensors(dir, tensors, { dtype, maxShardBytes: opts.maxShardBytes ?? 5e9 });
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  const hf = {
    ...model.config.hf,
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: model.config.imageTokenId,
    vision_feature_layer: model.config.select.layer,
    vision_feature_select_strategy: model.config.select.strategy,
    projector_hidden_act: model.config.projectorHiddenAct,
    multimodal_projector_bias: model.config.projectorBias,
    mm_projector_type: model.config.projectorType === 'mlp2x_gelu' ? undefined : model.config.projectorType,
    image_seq_length: model.imageSeqLength,
    tie_word_embeddings: model.config.text.tieWordEmbeddings,
    torch_dtype: torchDtype,
    text_config: llamaConfigToHf(model.llm.config, torchDtype),
    vision_config: model.config.vision,
    vistune_heads: heads.length ? heads : undefined, // a loaded config's old list must not survive
    vistune_plugins: model.composition?.plugins.length ? model.composition.plugins : undefined,
    vistune_chat: chatToJson(model.composition?.chat ?? model.config.chat),
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hf, null, 2)}\n`);
  if (opts.tokenizer) await writeLlavaProcessorConfig(dir, model, opts.tokenizer);
}
