// Two families core registers beside llava: `vistune` (any composition: an LLM, any modalities and heads, saved
// as config.json naming every part + model.safetensors by parameter name) and `causal_lm` (text-only decoders
// of any registered llm type, in their own HF layout, wrapped as a model with no modalities).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { readJsonFile } from '../io/json.js';
import { saveShardedSafetensors } from '../io/safetensors-write.js';
import { loadSafetensorsDir } from '../io/sharded.js';
import { llamaConfigToHf } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import type { CausalLM } from '../llm/types.js';
import { loadCausalLM, saveCausalLM } from '../llm/weights.js';
import { MultimodalModel } from '../multimodal/model.js';
import { selectedFeatureDim } from '../multimodal/select.js';
import type { Adapter, Head, ModalityEncoder } from '../multimodal/types.js';
import type { Module } from '../nn/module.js';
import type { ComponentConfig, Registry } from '../registry/types.js';
import { formatZodIssues } from '../registry/zod-issues.js';
import { acceptedFields, type CreateModelOptions, checkComponent, type ModelFamily } from './family.js';
import { chatFromJson, chatSettingsSchema, chatToJson, pluginsUsed } from './saved.js';
import type { CompositionConfig, ModalityConfig } from './types.js';

export const VISTUNE_MODEL_TYPE = 'vistune';

const component = z.looseObject({ type: z.string().min(1) });

const modalitySchema = z.strictObject({
  /** Registered media kind of the items (default: the modality's name). */
  media: z.string().min(1).optional(),
  placeholder_token_id: z.number().int(),
  encoder: component,
  select: z
    .strictObject({
      layer: z.union([z.number().int(), z.array(z.number().int()).min(1)]).default(-1),
      strategy: z.enum(['default', 'full']).default('full'),
    })
    .prefault({}),
  adapter: component,
  processor: component.optional(),
});

/** config.json of a `vistune` model. */
export const compositionJsonSchema = z.looseObject({
  model_type: z.literal(VISTUNE_MODEL_TYPE).optional(),
  llm: component,
  modalities: z.record(
    z.string().regex(/^[a-z][a-z0-9_]*$/, 'use lower-case letters, digits and _'),
    modalitySchema,
  ),
  vistune_heads: z.array(component).default([]),
  vistune_plugins: z.array(z.string().min(1)).default([]),
  vistune_chat: chatSettingsSchema.optional(),
});

/** config.json object → CompositionConfig; errors name `source` and the field. */
export function parseCompositionJson(json: unknown, source: string): CompositionConfig {
  const parsed = compositionJsonSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${source} is not a vistune model config:\n  ${formatZodIssues(parsed.error).join('\n  ')}`,
    );
  const c = parsed.data;
  const modalities: Record<string, ModalityConfig> = {};
  for (const [name, m] of Object.entries(c.modalities)) {
    modalities[name] = {
      media: m.media ?? name,
      placeholderTokenId: m.placeholder_token_id,
      encoder: m.encoder as ComponentConfig,
      select: m.select,
      adapter: m.adapter as ComponentConfig,
      ...(m.processor ? { processor: m.processor as ComponentConfig } : {}),
    };
  }
  return {
    llm: c.llm as ComponentConfig,
    modalities,
    heads: c.vistune_heads as ComponentConfig[],
    plugins: c.vistune_plugins,
    chat: chatFromJson(c.vistune_chat),
  };
}

/** CompositionConfig → config.json object. */
export function compositionToJson(composition: CompositionConfig, llm: CausalLM): Record<string, unknown> {
  const modalities = Object.fromEntries(
    Object.entries(composition.modalities).map(([name, m]) => [
      name,
      {
        media: m.media,
        placeholder_token_id: m.placeholderTokenId,
        encoder: m.encoder,
        select: m.select,
        adapter: m.adapter,
        ...(m.processor ? { processor: m.processor } : {}),
      },
    ]),
  );
  return {
    model_type: VISTUNE_MODEL_TYPE,
    architectures: ['VistuneForConditionalGeneration'],
    llm: composition.llm,
    modalities,
    vistune_heads: composition.heads.length ? composition.heads : undefined,
    vistune_plugins: composition.plugins.length ? composition.plugins : undefined,
    vistune_chat: chatToJson(composition.chat),
    // What HF-side tools look for first: the decoder's own config.
    text_config: llm instanceof LlamaForCausalLM ? llamaConfigToHf(llm.config) : undefined,
  };
}

/** A part that can state the registry config recreating its architecture (a tower built from `pretrained`). */
interface DescribesItself {
  componentConfig(): ComponentConfig;
}

/** The config saved for a part: its own description when it has one, else the config it was built from. */
function savedConfig(part: unknown, config: ComponentConfig): ComponentConfig {
  const describes = typeof (part as Partial<DescribesItself>).componentConfig === 'function';
  if (describes) return (part as DescribesItself).componentConfig();
  if ('pretrained' in config)
    throw new Error(
      `${config.type}: built from pretrained weights, but the part has no componentConfig() to save its architecture`,
    );
  return config;
}

/** A config for random init: an llm given by `path` is replaced by its HF config (the weights follow on load). */
function initialLlmConfig(llm: CausalLM & Module, config: ComponentConfig): ComponentConfig {
  if (!('path' in config) || !(llm instanceof LlamaForCausalLM)) return config;
  return { type: config.type, config: llamaConfigToHf(llm.config) };
}

/**
 * Builds every part of a composition through the registry (seeded random init unless a part's config names
 * pretrained weights), binds the heads to the modalities and records the family and the plugins used.
 */
export async function createComposite(
  composition: CompositionConfig,
  registry: Registry,
  opts: CreateModelOptions = {},
): Promise<MultimodalModel> {
  const seed = opts.seed ?? 0;
  const built: Module[] = [];
  try {
    const llmConfig = { ...composition.llm };
    if (!('path' in llmConfig) && !('seed' in llmConfig)) llmConfig.seed = seed;
    const llm = checkComponent<CausalLM & Module>(
      await registry.create('llm', llmConfig, { path: 'llm' }),
      ['forward', 'embed', 'lmHead', 'namedParameters'],
      `llm '${composition.llm.type}'`,
    );
    built.push(llm);
    const modalities: Record<string, ModalityConfig> = {};
    const specs = new Map<
      string,
      {
        placeholderTokenId: number;
        encoder: ModalityEncoder<unknown>;
        select: ModalityConfig['select'];
        adapter: Adapter;
      }
    >();
    let offset = 1;
    for (const [name, m] of Object.entries(composition.modalities)) {
      if (!registry.has('media', m.media))
        throw new Error(
          `modalities.${name}.media: no media kind '${m.media}' is registered (known: ${
            registry
              .list('media')
              .map((e) => e.name)
              .join(', ') || 'none'
          }); load the plugin that registers it`,
        );
      const encoderEntry = registry.get('encoder', m.encoder.type);
      const encoderConfig = { ...acceptedFields(encoderEntry, { seed: seed + offset }), ...m.encoder };
      const encoder = checkComponent<ModalityEncoder<unknown>>(
        await registry.create('encoder', encoderConfig, { path: `modalities.${name}.encoder` }),
        ['forward', 'featureLayout', 'namedParameters'],
        `encoder '${m.encoder.type}'`,
      );
      built.push(encoder);
      const adapterEntry = registry.get('adapter', m.adapter.type);
      const adapterConfig = {
        ...acceptedFields(adapterEntry, {
          inDim: selectedFeatureDim(encoder.hiddenSize, m.select),
          outDim: llm.hiddenSize,
          seed: seed + offset + 1,
        }),
        ...m.adapter,
      };
      const adapter = checkComponent<Adapter>(
        await registry.create('adapter', adapterConfig, { path: `modalities.${name}.adapter` }),
        ['forward', 'numSlots', 'namedParameters', 'loadStateDict'],
        `adapter '${m.adapter.type}'`,
      );
      built.push(adapter);
      offset += 2;
      specs.set(name, { placeholderTokenId: m.placeholderTokenId, encoder, select: m.select, adapter });
      modalities[name] = {
        ...m,
        encoder: savedConfig(encoder, encoderConfig as ComponentConfig),
        adapter: savedConfig(adapter, adapterConfig as ComponentConfig),
      };
    }
    const heads: Head<unknown, tf.TensorContainer>[] = [];
    for (const [i, headConfig] of composition.heads.entries()) {
      const head = checkComponent<Head<unknown, tf.TensorContainer>>(
        await registry.create('head', headConfig, { path: `heads[${i}]` }),
        ['forward', 'namedParameters', 'loadStateDict'],
        `head '${headConfig.type}'`,
      );
      built.push(head);
      heads.push(head);
      head.bindModalities?.(new Map([...specs].map(([n, s]) => [n, { encoder: s.encoder }])));
    }
    const model = new MultimodalModel({ llm, modalities: specs, heads });
    const saved: CompositionConfig = {
      ...composition,
      llm: initialLlmConfig(llm, composition.llm),
      modalities,
      heads: heads.map((h, i) => h.headConfig?.() ?? composition.heads[i]),
    };
    model.family = vistuneFamily;
    model.composition = { ...saved, plugins: pluginsUsed(registry, saved, composition.plugins) };
    return model;
  } catch (err) {
    for (const part of built) part.dispose();
    throw err;
  }
}

/** Any composition, saved with its parts named in config.json and its weights by parameter name. */
export const vistuneFamily: ModelFamily = {
  name: VISTUNE_MODEL_TYPE,
  create: (config, registry, opts) =>
    createComposite(parseCompositionJson(config, opts?.source ?? 'model config'), registry, opts),
  async load(dir, registry) {
    const configPath = join(dir, 'config.json');
    const composition = parseCompositionJson(await readJsonFile(configPath, 'model config'), configPath);
    const model = await createComposite(composition, registry);
    try {
      const weights = await loadSafetensorsDir(dir);
      try {
        model.loadStateDict(weights, { source: dir });
      } finally {
        for (const t of weights.values()) t.dispose();
      }
      return model;
    } catch (err) {
      model.dispose();
      throw err;
    }
  },
  async save(model, dir, opts = {}) {
    if (!model.composition) throw new Error('vistune family: the model has no composition to save');
    await mkdir(dir, { recursive: true });
    await saveShardedSafetensors(dir, new Map(model.namedParameters()), {
      dtype: opts.dtype ?? 'F32',
      maxShardBytes: opts.maxShardBytes ?? 5e9,
    });
    const json = compositionToJson(model.composition, model.llm);
    await writeFile(join(dir, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
  },
  checkpointName: (param) => param,
};

/** Wraps a decoder as a model with no modalities (one generation and training path for every model). */
export function textOnlyModel(llm: LlamaForCausalLM): MultimodalModel {
  const model = new MultimodalModel({ llm, modalities: {} });
  model.family = causalLmFamily;
  model.composition = {
    llm: { type: llm.config.modelType, config: llamaConfigToHf(llm.config) },
    modalities: {},
    heads: [],
    plugins: [],
  };
  return model;
}

const LLM_PREFIX = 'llm.';

/** Text-only decoders in HF *ForCausalLM layout (config.json model_type llama, qwen2, mistral …). */
export const causalLmFamily: ModelFamily = {
  name: 'causal_lm',
  async create(config, registry, opts) {
    const type = String(config.model_type ?? 'llama');
    const llm = await registry.create('llm', { type, config, seed: opts?.seed ?? 0 }, { path: 'llm' });
    if (!(llm instanceof LlamaForCausalLM))
      throw new Error(
        `causal_lm: llm '${type}' is not a LLaMA-family decoder; save it with the vistune family`,
      );
    return textOnlyModel(llm);
  },
  load: async (dir) => textOnlyModel(await loadCausalLM(dir)),
  async save(model, dir, opts = {}) {
    if (!(model.llm instanceof LlamaForCausalLM) || model.modalities.size)
      throw new Error('causal_lm family: saves text-only LLaMA-family models only');
    await saveCausalLM(model.llm, dir, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes });
  },
  checkpointName: (param) => (param.startsWith(LLM_PREFIX) ? param.slice(LLM_PREFIX.length) : param),
};
