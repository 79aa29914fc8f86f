// Hugging Face checkpoints of LLaMA-family decoders: config.json + safetensors (single or sharded), either a
// plain *ForCausalLM folder or the language model inside a LLaVA-style checkpoint.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { readJsonFile } from '../io/json.js';
import { readSafetensorsHeader } from '../io/safetensors-read.js';
import { type SafetensorsFloatDtype, saveShardedSafetensors } from '../io/safetensors-write.js';
import { loadSafetensorsDir, resolveWeightFiles } from '../io/sharded.js';
import { type LlamaConfig, llamaConfigToHf, parseLlamaConfig } from './config.js';
import { LlamaForCausalLM } from './llama.js';

/**
 * Where the decoder's tensors sit in a checkpoint. `prefix` + HF CausalLM name (`wrapsCausalLM`, legacy LLaVA:
 * `language_model.model.*`, `language_model.lm_head.weight`), or `prefix` + base-model name with the head at
 * the root (newer transformers: `model.language_model.layers.*`, `lm_head.weight`).
 */
export interface CheckpointLayout {
  prefix: string;
  wrapsCausalLM: boolean;
}

/** Checkpoint name of a model parameter under a layout. */
export function checkpointName(paramName: string, layout: CheckpointLayout): string {
  if (layout.wrapsCausalLM) return layout.prefix + paramName;
  if (paramName.startsWith('model.')) return layout.prefix + paramName.slice('model.'.length);
  return paramName; // lm_head.weight stays at the root
}

/** Model parameter name of a checkpoint tensor, or null when the tensor is not part of the decoder. */
export function paramNameOf(fileName: string, layout: CheckpointLayout): string | null {
  if (layout.wrapsCausalLM)
    return fileName.startsWith(layout.prefix) ? fileName.slice(layout.prefix.length) : null;
  if (fileName === 'lm_head.weight') return fileName;
  return fileName.startsWith(layout.prefix) ? `model.${fileName.slice(layout.prefix.length)}` : null;
}

/**
 * The layout of a checkpoint from its tensor names. With a prefix, whichever of the two shapes it has;
 * without, tried in order: `language_model.` (legacy LLaVA), `model.language_model.` (newer LLaVA), none.
 */
export function detectCheckpointLayout(names: readonly string[], prefix?: string): CheckpointLayout {
  const has = (start: string) => names.some((n) => n.startsWith(start));
  const candidates = prefix !== undefined ? [prefix] : ['language_model.', 'model.language_model.', ''];
  for (const p of candidates) {
    if (has(`${p}model.`)) return { prefix: p, wrapsCausalLM: true };
    if (p !== '' && (has(`${p}embed_tokens.`) || has(`${p}layers.`)))
      return { prefix: p, wrapsCausalLM: false };
  }
  const sample = names.slice(0, 5).join(', ');
  throw new Error(
    prefix !== undefined
      ? `no decoder tensors under prefix '${prefix}' (expected ${prefix}model.* or ${prefix}layers.*; the checkpoint has ${sample}, …)`
      : `no LLaMA-style decoder tensors found (model.*, language_model.model.* or model.language_model.*; the checkpoint has ${sample}, …)`,
  );
}

/** Checkpoint tensors the model does not need: RoPE buffers some exporters save, lm_head when tied. */
function ignorable(paramName: string, config: LlamaConfig): boolean {
  return (
    paramName.endsWith('rotary_emb.inv_freq') || (config.tieWordEmbeddings && paramName === 'lm_head.weight')
  );
}

/** The decoder's HF config from a config.json object: itself, or its text_config for LLaVA-style configs. */
export function decoderConfigFromJson(json: unknown, source: string): LlamaConfig {
  const raw = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const text = raw.text_config;
  if (typeof text !== 'object' || text === null) return parseLlamaConfig(json, source);
  // Older LLaVA configs keep tie_word_embeddings at the top level only.
  const merged = { tie_word_embeddings: raw.tie_word_embeddings, ...(text as Record<string, unknown>) };
  if (merged.tie_word_embeddings === undefined) delete merged.tie_word_embeddings;
  return parseLlamaConfig(merged, `${source} (text_config)`);
}

export interface LoadCausalLMOptions {
  /** Sub-model prefix in a composite checkpoint ('language_model.', 'model.language_model.'); default: detected. */
  prefix?: string;
}

/**
 * Load a LLaMA / Qwen2 / Mistral decoder from a Hugging Face folder (config.json + model.safetensors or
 * shards). F16/BF16 weights are upcast to float32. Every missing, unexpected or wrongly shaped tensor is
 * reported by name and file before any weight is read.
 */
export async function loadCausalLM(dir: string, opts: LoadCausalLMOptions = {}): Promise<LlamaForCausalLM> {
  const configPath = join(dir, 'config.json');
  const json = await readJsonFile(configPath, 'model config', {
    hint: 'expected a Hugging Face model folder',
  });
  const config = decoderConfigFromJson(json, configPath);

  const files = await resolveWeightFiles(dir);
  const fileOf = new Map<string, { file: string; shape: number[] }>();
  for (const file of files.files) {
    for (const [name, info] of (await readSafetensorsHeader(file)).tensors)
      fileOf.set(name, { file: basename(file), shape: info.shape });
  }
  const layout = detectCheckpointLayout([...fileOf.keys()], opts.prefix);

  const model = new LlamaForCausalLM(config, { random: false });
  try {
    const own = model.stateDict();
    const unexpected: string[] = [];
    const wrongShape: string[] = [];
    const taken = new Set<string>();
    for (const [fileName, { file, shape }] of fileOf) {
      const param = paramNameOf(fileName, layout);
      if (param === null || ignorable(param, config)) continue;
      const target = own.get(param);
      if (!target) unexpected.push(`${fileName} (${file})`);
      else if (target.shape.join() !== shape.join()) {
        wrongShape.push(`${fileName} in ${file} is [${shape}], the config implies [${target.shape}]`);
      } else taken.add(fileName);
    }
    const missing = [...own.keys()].map((p) => checkpointName(p, layout)).filter((n) => !fileOf.has(n));
    if (missing.length || unexpected.length || wrongShape.length) {
      throw new Error(
        `checkpoint ${dir} does not match its ${config.modelType} config ${configPath}:` +
          (missing.length ? `\n  missing: ${missing.join(', ')}` : '') +
          (unexpected.length ? `\n  unexpected: ${unexpected.join(', ')}` : '') +
          (wrongShape.length ? `\n  wrong shape: ${wrongShape.join('; ')}` : ''),
      );
    }
    const weights = await loadSafetensorsDir(dir, {
      names: (n) => taken.has(n),
      rename: (n) => paramNameOf(n, layout),
    });
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
}

export interface SaveCausalLMOptions {
  /** Storage dtype (default F32). */
  dtype?: SafetensorsFloatDtype;
  /** Shard size limit in bytes (default 5 GB, as transformers); below it one model.safetensors is written. */
  maxShardBytes?: number;
}

const TORCH_DTYPE: Record<SafetensorsFloatDtype, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
};

/** Write the model as a Hugging Face *ForCausalLM folder: config.json + model.safetensors (or shards). */
export async function saveCausalLM(
  model: LlamaForCausalLM,
  dir: string,
  opts: SaveCausalLMOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, tf.Tensor>(model.stateDict());
  await saveShardedSafetensors(dir, tensors, { dtype, maxShardBytes: opts.maxShardBytes ?? 5e9 });
  const config = llamaConfigToHf(model.config, TORCH_DTYPE[dtype]);
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
