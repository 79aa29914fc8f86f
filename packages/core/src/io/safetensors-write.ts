// safetensors writer: deterministic layout, streamed tensor by tensor into a temp file, then an atomic rename.
import { randomUUID } from 'node:crypto';
import { type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { ensureDir, fsError } from './fs-errors.js';
import { float32ToBfloat16, float32ToFloat16 } from './half.js';
import { SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from './safetensors-format.js';

export type SafetensorsFloatDtype = 'F32' | 'F16' | 'BF16';
export type TensorsToSave = Map<string, tf.Tensor> | Record<string, tf.Tensor>;

export interface SaveSafetensorsOptions {
  /** Storage dtype of float32 tensors (default F32); int32 is always I32 and bool BOOL. */
  dtype?: SafetensorsFloatDtype;
  /** `__metadata__` strings; default { format: 'pt' }, which transformers requires. {} writes none. */
  metadata?: Record<string, string>;
}

interface PlannedTensor {
  name: string;
  tensor: tf.Tensor;
  dtype: SafetensorsDtype;
  begin: number;
  end: number;
}

/** Elements converted per write for F16/BF16, so a conversion never doubles a large tensor in memory. */
const CONVERT_CHUNK = 1 << 20;
const WRITE_CHUNK_BYTES = 1 << 30;

function storageDtype(name: string, tensor: tf.Tensor, floatDtype: SafetensorsFloatDtype): SafetensorsDtype {
  if (tensor.isDisposed) throw new Error(`cannot save tensor '${name}': it has been disposed`);
  if (tensor.dtype === 'float32') return floatDtype;
  if (tensor.dtype === 'int32') return 'I32';
  if (tensor.dtype === 'bool') return 'BOOL';
  throw new Error(`cannot save tensor '${name}': dtype ${tensor.dtype} has no safetensors equivalent`);
}

function byteSize(tensor: tf.Tensor, dtype: SafetensorsDtype): number {
  return tensor.size * SAFETENSORS_DTYPE_BYTES[dtype];
}

function toEntries(tensors: TensorsToSave): Array<[string, tf.Tensor]> {
  return tensors instanceof Map ? [...tensors] : Object.entries(tensors);
}

/** Layout as the reference writer: descending dtype alignment, then name, so every tensor stays aligned. */
function planLayout(tensors: TensorsToSave, floatDtype: SafetensorsFloatDtype): PlannedTensor[] {
  const items = toEntries(tensors).map(([name, tensor]) => {
    const dtype = storageDtype(name, tensor, floatDtype);
    return { name, tensor, dtype, begin: 0, end: 0 };
  });
  const align = (d: SafetensorsDtype) => SAFETENSORS_DTYPE_BYTES[d];
  items.sort((a, b) => align(b.dtype) - align(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  for (const item of items) {
    item.begin = offset;
    offset += byteSize(item.tensor, item.dtype);
    item.end = offset;
  }
  return items;
}

/** u64 length + compact JSON header padded with spaces to a multiple of 8 bytes. */
function encodeHeader(items: PlannedTensor[], metadata: Record<string, string>): Uint8Array {
  // Built by hand: a JS object would reorder integer-like names ("0") ahead of the others.
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length) {
    const fields = metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(String(metadata[k]))}`);
    parts.push(`"__metadata__":{${fields.join(',')}}`);
  }
  for (const t of items) {
    const info = { dtype: t.dtype, shape: t.tensor.shape, data_offsets: [t.begin, t.end] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const length = Math.min(WRITE_CHUNK_BYTES, bytes.length - done);
    const { bytesWritten } = await file.write(bytes, done, length);
    done += bytesWritten;
  }
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

async function writeTensor(file: FileHandle, t: PlannedTensor): Promise<void> {
  const values = await t.tensor.data();
  if (t.dtype === 'F32' || t.dtype === 'I32')
    return writeAll(file, asBytes(values as Float32Array | Int32Array));
  if (t.dtype === 'BOOL') {
    return writeAll(
      file,
      values instanceof Uint8Array ? values : Uint8Array.from(values as Int32Array, (v) => (v ? 1 : 0)),
    );
  }
  const convert = t.dtype === 'F16' ? float32ToFloat16 : float32ToBfloat16;
  const floats = values as Float32Array;
  for (let i = 0; i < floats.length; i += CONVERT_CHUNK) {
    await writeAll(file, asBytes(convert(floats.subarray(i, i + CONVERT_CHUNK))));
  }
}

/** Write to `<path>.<random>.tmp` next to the target, fsync, then rename: the target is never half-written. */
export async function writeAtomically(
  path: string,
  write: (file: FileHandle) => Promise<void>,
): Promise<void> {
  await ensureDir(dirname(path), 'output');
  const temp = join(dirname(path), `.${basename(path)}.${randomUUID().slice(0, 8)}.tmp`);
  let file: FileHandle;
  try {
    file = await open(temp, 'wx');
  } catch (err) {
    throw fsError(err, path, 'write');
  }
  try {
    await write(file);
    await file.sync();
    await file.close();
    await rename(temp, path);
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    // The temp file is gone: the target is either the old complete file or absent, never half-written.
    throw fsError(err, path, 'write (nothing was left half-written)');
  }
}

/** Save tensors as one safetensors file (deterministic bytes for the same tensors and options). */
export async function saveSafetensors(
  path: string,
  tensors: TensorsToSave,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  const items = planLayout(tensors, opts.dtype ?? 'F32');
  const header = encodeHeader(items, opts.metadata ?? { format: 'pt' });
  await writeAtomically(path, async (file) => {
    await writeAll(file, header);
    for (const item of items) await writeTensor(file, item);
  });
}

export interface SaveShardedOptions extends SaveSafetensorsOptions {
  /** Upper bound on a shard's tensor bytes; a single larger tensor gets a shard of its own. */
  maxShardBytes: number;
  /** File stem (default 'model' → model-00001-of-00003.safetensors, model.safetensors.index.json). */
  baseName?: string;
}

export interface SavedShards {
  files: string[];
  /** null when everything fit in one shard: then it is written as `<baseName>.safetensors`, as transformers does. */
  indexPath: string | null;
  /** Sum of the tensors' stored bytes (the index's metadata.total_size). */
  totalSize: number;
}

/** Save tensors as shards + `<baseName>.safetensors.index.json`; stale shards of an earlier save are removed. */
export async function saveShardedSafetensors(
  dir: string,
  tensors: TensorsToSave,
  opts: SaveShardedOptions,
): Promise<SavedShards> {
  if (!(opts.maxShardBytes > 0))
    throw new Error(`saveShardedSafetensors: maxShardBytes must be > 0, got ${opts.maxShardBytes}`);
  const baseName = opts.baseName ?? 'model';
  const floatDtype = opts.dtype ?? 'F32';
  // Greedy split in name order, like transformers' shard splitting.
  const sorted = toEntries(tensors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const shards: Array<Map<string, tf.Tensor>> = [];
  let current = new Map<string, tf.Tensor>();
  let currentBytes = 0;
  let totalSize = 0;
  for (const [name, tensor] of sorted) {
    const bytes = byteSize(tensor, storageDtype(name, tensor, floatDtype));
    if (current.size > 0 && currentBytes + bytes > opts.maxShardBytes) {
      shards.push(current);
      current = new Map();
      currentBytes = 0;
    }
    current.set(name, tensor);
    currentBytes += bytes;
    totalSize += bytes;
  }
  shards.push(current);

  const indexPath = join(dir, `${baseName}.safetensors.index.json`);
  const shardPattern = new RegExp(
    `^${baseName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{5}-of-\\d{5}\\.safetensors$`,
  );
  const pad = (i: number) => String(i).padStart(5, '0');
  const names =
    shards.length === 1
      ? [`${baseName}.safetensors`]
      : shards.map((_, i) => `${baseName}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);

  for (let i = 0; i < shards.length; i++) await saveSafetensors(join(dir, names[i]), shards[i], opts);
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      for (const name of shard.keys()) weightMap[name] = names[i];
    });
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    await writeAtomically(indexPath, (file) =>
      writeAll(file, new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`)),
    );
  }

  // Leftovers of an earlier save would shadow or contradict the new one (a single file wins over an index).
  const keep = new Set(names);
  for (const entry of await readdir(dir)) {
    const stale =
      shardPattern.test(entry) ||
      entry === `${baseName}.safetensors` ||
      (shards.length === 1 && entry === basename(indexPath));
    if (stale && !keep.has(entry)) await rm(join(dir, entry), { force: true });
  }
  return {
    files: names.map((n) => join(dir, n)),
    indexPath: shards.length > 1 ? indexPath : null,
    totalSize,
  };
}
