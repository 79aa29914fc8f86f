// Load a vision tower from a Hugging Face model folder: CLIPVisionModel / SiglipVisionModel, CLIPModel /
// SiglipModel (their vision half) or a LLaVA checkpoint (its vision_tower).
import { join } from 'node:path';
import { Initializer, loadSafetensorsDir, readJsonFile } from '@vistune/core';
import { VisionTransformer } from './model.js';

const VISION_TYPE_OF_PARENT: Readonly<Record<string, string>> = {
  clip: 'clip_vision_model',
  siglip: 'siglip_vision_model',
};

/** The vision config inside a config.json: itself for a vision model, else its `vision_config` (model_type filled from the parent). */
export function selectVisionConfig(raw: unknown, source = 'config.json'): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: expected a JSON object`);
  const config = raw as Record<string, unknown>;
  if (config.model_type === 'clip_vision_model' || config.model_type === 'siglip_vision_model') return config;
  const vision = config.vision_config;
  if (typeof vision !== 'object' || vision === null) {
    throw new Error(
      `${source}: model_type "${String(config.model_type)}" has no vision_config; expected a CLIP/SigLIP vision model, ` +
        'a CLIP/SigLIP model, or a LLaVA checkpoint',
    );
  }
  const v = vision as Record<string, unknown>;
  const inferred = VISION_TYPE_OF_PARENT[String(config.model_type)];
  return v.model_type === undefined && inferred ? { ...v, model_type: inferred } : v;
}

export interface LoadPretrainedVisionOptions {
  /** SigLIP: build and load the attention-pooling head (default: the config's vision_use_head). */
  withHead?: boolean;
  /** Prefix before `vision_model.` in the weight names; default: detected. */
  prefix?: string;
}

/** Builds the tower from `<dir>/config.json` and loads its weights (single file or shards). */
export async function loadPretrainedVisionTransformer(
  dir: string,
  opts: LoadPretrainedVisionOptions = {},
): Promise<{ model: VisionTransformer; ignored: string[] }> {
  const configPath = join(dir, 'config.json');
  const raw = await readJsonFile(configPath, 'model config', {
    hint: 'expected a Hugging Face model folder',
  });
  // A tower inside a VLM (config with vision_config): the VLM reads hidden states, never SigLIP's pooling head.
  const parent = raw as { vision_config?: unknown; model_type?: unknown };
  const isTower =
    typeof parent.vision_config === 'object' && !(String(parent.model_type) in VISION_TYPE_OF_PARENT);
  const model = VisionTransformer.fromHFConfig(selectVisionConfig(raw, configPath), {
    init: new Initializer({ random: false }),
    withHead: opts.withHead ?? (isTower ? false : undefined),
    source: configPath,
  });
  try {
    const weights = await loadSafetensorsDir(dir, { names: (n) => n.includes('vision_model.') });
    try {
      const { ignored } = model.loadHFWeights(weights, { prefix: opts.prefix, source: dir });
      return { model, ignored };
    } finally {
      for (const t of weights.values()) t.dispose();
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
}
