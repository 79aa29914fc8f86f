// Hugging Face weight folders: a single model.safetensors, or shards listed by model.safetensors.index.json.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { readJsonFile } from './json.js';
import {
  type LoadSafetensorsOptions,
  readSelected,
  SafetensorsReader,
  selectTensors,
} from './safetensors-read.js';

export interface WeightFiles {
  dir: string;
  /** The shard index, or null for a single-file checkpoint. */
  indexPath: string | null;
  /** Absolute paths of the safetensors files, in shard order. */
  files: string[];
  /** tensor name → absolute shard path (from the index); null for a single file. */
  weightMap: Map<string, string> | null;
}

const shardIndexSchema = z.object({
  metadata: z.record(z.string(), z.unknown()).optional(),
  weight_map: z.record(z.string(), z.string()),
});

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** Find the weight files of a folder; `baseName` is 'model' for model.safetensors (e.g. 'adapter_model'). */
export async function resolveWeightFiles(
  dir: string,
  opts: { baseName?: string } = {},
): Promise<WeightFiles> {
  const baseName = opts.baseName ?? 'model';
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new Error(`model folder not found: ${dir}`);
    if (err.code === 'ENOTDIR') throw new Error(`expected a model folder, got a file: ${dir}`);
    throw err;
  });

  // The same precedence as transformers: a single file wins over an index.
  const single = join(dir, `${baseName}.safetensors`);
  if (await isFile(single)) return { dir, indexPath: null, files: [single], weightMap: null };
  if ((await stat(single).catch(() => null))?.isDirectory())
    throw new Error(
      `${single} is a folder, expected a safetensors file: remove or rename the folder (a broken download or copy?)`,
    );

  const indexPath = join(dir, `${baseName}.safetensors.index.json`);
  if (await isFile(indexPath)) {
    const index = await readJsonFile(indexPath, 'safetensors shard index', { schema: shardIndexSchema });
    const shardNames = [...new Set(Object.values(index.weight_map))].sort();
    const missing: string[] = [];
    for (const shard of shardNames) if (!(await isFile(join(dir, shard)))) missing.push(shard);
    if (missing.length) {
      throw new Error(
        `safetensors shard index ${indexPath} lists shard files that are missing from ${dir}: ${missing.join(', ')} ` +
          '(incomplete download?)',
      );
    }
    const weightMap = new Map(
      Object.entries(index.weight_map).map(([name, shard]) => [name, join(dir, shard)]),
    );
    return { dir, indexPath, files: shardNames.map((s) => join(dir, s)), weightMap };
  }

  const found = entries.filter((e) => /\.(safetensors|bin|pt|pth|ckpt|json)$/.test(e)).sort();
  const pickle = found.some((e) => /\.(bin|pt|pth|ckpt)$/.test(e))
    ? ' PyTorch pickle weights are not supported: convert them to safetensors (save_pretrained(..., safe_serialization=True)).'
    : '';
  throw new Error(
    `no weights in ${dir}: expected ${baseName}.safetensors or ${baseName}.safetensors.index.json ` +
      `(found: ${found.join(', ') || 'nothing relevant'}).${pickle}`,
  );
}

/** Load every selected tensor of a weight folder (single file or shards), one tensor at a time. */
export async function loadSafetensorsDir(
  dir: string,
  opts: LoadSafetensorsOptions & { baseName?: string } = {},
): Promise<Map<string, tf.Tensor>> {
  const weights = await resolveWeightFiles(dir, opts);
  const readers: SafetensorsReader[] = [];
  const result = new Map<string, tf.Tensor>();
  try {
    for (const file of weights.files) readers.push(await SafetensorsReader.open(file));
    if (weights.weightMap) {
      for (const [name, file] of weights.weightMap) {
        if (!readers.find((r) => r.path === file)?.header.tensors.has(name)) {
          throw new Error(
            `safetensors shard index ${weights.indexPath} puts tensor '${name}' in ${file}, which lacks it`,
          );
        }
      }
    }
    // A name list is checked against the whole folder, not per shard.
    const { names } = opts;
    const wanted = Array.isArray(names) ? new Set(names) : null;
    if (wanted) {
      const missing = [...wanted].filter((n) => !readers.some((r) => r.header.tensors.has(n)));
      if (missing.length)
        throw new Error(`weights in ${dir}: requested tensors not found: ${missing.join(', ')}`);
    }
    const filter = wanted ? (n: string) => wanted.has(n) : names;
    const taken = new Map<string, string>();
    const picks = readers.map((r) => selectTensors(r.header, { names: filter, rename: opts.rename }, taken));
    for (let i = 0; i < readers.length; i++) await readSelected(readers[i], picks[i], result);
    return result;
  } catch (err) {
    for (const t of result.values()) t.dispose();
    throw err;
  } finally {
    for (const r of readers) await r.close();
  }
}
