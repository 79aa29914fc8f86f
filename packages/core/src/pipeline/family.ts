// Model families (registry kind `model`): how a config.json becomes a model, how a folder loads and saves.
// A family entry declares the config.json `model_type`s it reads (HfBinding.types); its factory returns the
// family object. Core registers llava (HF LlavaForConditionalGeneration), vistune (any composition) and
// causal_lm (text-only decoders of any registered llm type).
import { z } from 'zod';
import type { SafetensorsFloatDtype } from '../io/safetensors-write.js';
import type { MultimodalModel } from '../multimodal/model.js';
import type { Registry, RegistryEntry, RegistryKind } from '../registry/types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface SaveModelOptions {
  /** Storage dtype (default F32). */
  dtype?: SafetensorsFloatDtype;
  /** Shard size limit in bytes (default 5 GB). */
  maxShardBytes?: number;
  /** HF LLaVA only: 'legacy' (default) or 'new' (transformers ≥ 4.52) weight names. */
  names?: 'legacy' | 'new';
  /** The tokenizer saved beside (families that write processor_config.json read placeholder texts from it). */
  tokenizer?: Tokenizer;
}

export interface CreateModelOptions {
  /** Seed of the random init. Default 0. */
  seed?: number;
  /** Names the config in errors (a recipe path). */
  source?: string;
}

export interface ModelFamily {
  readonly name: string;
  /** A randomly initialised model from a config.json-shaped object. */
  create(
    config: Readonly<Record<string, unknown>>,
    registry: Registry,
    opts?: CreateModelOptions,
  ): Promise<MultimodalModel>;
  /** Loads a model folder this family wrote (or HF wrote, for HF families). */
  load(dir: string, registry: Registry): Promise<MultimodalModel>;
  /** Writes config.json and the weights (tokenizer and processors are saved by the caller). */
  save(model: MultimodalModel, dir: string, opts?: SaveModelOptions): Promise<void>;
  /** Checkpoint name of a model parameter (LoRA adapter files use it too). */
  checkpointName(param: string): string;
}

/** Registers a family as a `model` entry whose factory returns it; `types` are the config.json model_types. */
export function registerModelFamily(
  registry: Registry,
  family: ModelFamily,
  opts: { types: readonly string[]; about: string },
): void {
  registry.add({
    kind: 'model',
    name: family.name,
    about: opts.about,
    hf: { types: opts.types },
    schema: z.object({}),
    create: () => family,
  });
}

/** The family registered under `name`. */
export function modelFamily(registry: Registry, name: string): ModelFamily {
  return registry.createSync('model', { type: name }) as ModelFamily;
}

/** Whether an entry's config schema has a key (so optional fields like `act` are passed only where accepted). */
export function schemaAccepts(entry: RegistryEntry<RegistryKind>, key: string): boolean {
  const schema = entry.schema;
  return schema instanceof z.ZodObject && key in schema.shape;
}

/** Drops keys the entry's schema does not declare (for plain object schemas; others get everything). */
export function acceptedFields(
  entry: RegistryEntry<RegistryKind>,
  fields: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  if (!(entry.schema instanceof z.ZodObject)) return { ...fields };
  return Object.fromEntries(Object.entries(fields).filter(([k]) => schemaAccepts(entry, k)));
}

/** A registry product checked for the methods the pipeline calls; the error names the part and what it lacks. */
export function checkComponent<T>(value: unknown, methods: readonly string[], what: string): T {
  const v = value as Record<string, unknown> | null;
  const lacking = methods.filter((m) => typeof v?.[m] !== 'function');
  if (lacking.length) throw new Error(`registry ${what} is not usable here: it lacks ${lacking.join(', ')}`);
  return value as T;
}
