// Model folders and configs → models, whatever the family: config.json `model_type` picks the registered
// family (llava, vistune, a plugin's), text-only decoder types fall back to causal_lm, and the plugins a saved
// model names (`vistune_plugins`) are loaded first.
import { isAbsolute, join, resolve } from 'node:path';
import { readJsonFile } from '../io/json.js';
import type { MultimodalModel } from '../multimodal/model.js';
import { type LoadedPlugin, loadPlugins, resolvePlugin } from '../registry/plugins.js';
import type { Registry } from '../registry/types.js';
import { type CreateModelOptions, type ModelFamily, modelFamily } from './family.js';

/** The family that reads a config.json `model_type`, or an error naming the type, the file and the fix. */
export function familyForModelType(registry: Registry, modelType: unknown, source: string): ModelFamily {
  if (typeof modelType === 'string') {
    const entry = registry.findHf('model', modelType);
    if (entry) return modelFamily(registry, entry.name);
    if (registry.findHf('llm', modelType) || registry.has('llm', modelType))
      return modelFamily(registry, 'causal_lm');
  }
  const families = registry.list('model').flatMap((e) => e.hfTypes ?? []);
  const llms = registry.list('llm').map((e) => e.name);
  throw new Error(
    `${source}: model_type ${modelType === undefined ? '(missing)' : `'${String(modelType)}'`} is not a registered model family ` +
      `(multimodal: ${families.join(', ') || 'none'}; text-only: ${llms.join(', ') || 'none'}); ` +
      'set model_type, or load the plugin that registers it (--plugin NAME, or "vistune_plugins" in config.json)',
  );
}

/** Whether a plugin specifier's entries are already in the registry (package name or resolved path as origin). */
function isLoaded(registry: Registry, spec: string, from: string): boolean {
  const origins = new Set(registry.list().map((e) => e.origin));
  if (origins.has(spec)) return true;
  const path = isAbsolute(spec) ? spec : resolve(from, spec);
  return origins.has(path);
}

/** Where a saved model's plugin resolves: from the model's folder, else from the working directory. */
async function pluginBase(spec: string, from: string): Promise<string> {
  if (
    await resolvePlugin(spec, from).then(
      () => true,
      () => false,
    )
  )
    return from;
  return process.cwd();
}

/**
 * Loads the plugins of a saved model (config.json `vistune_plugins`) that are not in the registry yet, resolved
 * from the model's folder or, for a model copied out of its project, from the working directory.
 */
export async function loadModelPlugins(
  registry: Registry,
  plugins: readonly string[],
  from: string,
): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  for (const spec of plugins) {
    if (isLoaded(registry, spec, from)) continue;
    loaded.push(...(await loadPlugins(registry, [spec], { from: await pluginBase(spec, from) })));
  }
  return loaded;
}

function configObject(json: unknown, source: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(
      `${source} holds ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}, not a model config object: ` +
        'restore the file (it must be a JSON object with model_type)',
    );
  return json as Record<string, unknown>;
}

function pluginList(config: Record<string, unknown>, source: string): string[] {
  const plugins = config.vistune_plugins ?? [];
  if (!Array.isArray(plugins) || plugins.some((p) => typeof p !== 'string'))
    throw new Error(`${source}: vistune_plugins must be a list of package names or paths`);
  return plugins as string[];
}

/** Loads any model folder: LLaVA-HF, a vistune composition, a text-only decoder, or a plugin's family. */
export async function loadPretrained(dir: string, registry: Registry): Promise<MultimodalModel> {
  const source = join(dir, 'config.json');
  const config = configObject(
    await readJsonFile(source, 'model config', {
      hint: 'expected a model folder with config.json, model.safetensors and tokenizer.json',
    }),
    source,
  );
  await loadModelPlugins(registry, pluginList(config, source), dir);
  const family = familyForModelType(registry, config.model_type, source);
  return family.load(dir, registry);
}

/** A randomly initialised model from a config.json-shaped object (its `model_type` picks the family). */
export async function createModel(
  config: unknown,
  registry: Registry,
  opts: CreateModelOptions & { from?: string } = {},
): Promise<MultimodalModel> {
  const source = opts.source ?? 'model config';
  const object = configObject(config, source);
  await loadModelPlugins(registry, pluginList(object, source), opts.from ?? process.cwd());
  const family = familyForModelType(registry, object.model_type ?? 'llava', source);
  return family.create(object, registry, opts);
}
