// Streaming safetensors reader: one file handle, each tensor's byte range read on demand and converted
// to a tf dtype (floats → float32, integers → int32, BOOL → bool).
import { type FileHandle, open } from 'node:fs/promises';
import { endianness } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { errnoCode, fsError } from './fs-errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './half.js';
import {
  parseHeaderLength,
  parseSafetensorsHeader,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './safetensors-format.js';

/** Where a tensor read from a safetensors file came from, for loaders' error messages. */
export interface TensorOrigin {
  /** The safetensors file. */
  file: string;
  /** The tensor's name in that file (before any rename). */
  name: string;
  /** Its stored dtype (an I16 tensor becomes int32 in memory). */
  dtype: SafetensorsDtype;
  /** Flat index of its first NaN/Inf value, -1 when all are finite (always -1 for integer dtypes). */
  firstNonfinite: number;
}

const origins = new WeakMap<tf.Tensor, TensorOrigin>();

/** The file, name and stored dtype of a tensor read by SafetensorsReader; undefined for any other tensor. */
export function tensorOrigin(tensor: tf.Tensor): TensorOrigin | undefined {
  return origins.get(tensor);
}

/** Index of the first NaN or ±Inf value, or -1. */
export function firstNonfiniteIndex(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/** Reads larger than this are split: a single read() is capped near 2 GiB on Linux. */
const READ_CHUNK_BYTES = 1 << 30;

async function readExactly(
  file: FileHandle,
  path: string,
  target: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(READ_CHUNK_BYTES, target.length - done);
    const { bytesRead } = await file.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new Error(
        `safetensors file ${path}: unexpected end of file at byte ${position + done} (file changed?)`,
      );
    }
    done += bytesRead;
  }
}

async function openFile(path: string): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new Error(`safetensors file not found: ${path}`);
    throw fsError(err, path, 'open the safetensors file');
  }
  // Opening a folder for reading succeeds on Linux; only the first read would fail, with a bare EISDIR.
  if ((await file.stat()).isDirectory()) {
    await file.close();
    throw new Error(
      `safetensors file ${path} is a folder, expected a file: remove or rename the folder (a broken download or copy?)`,
    );
  }
  return file;
}

async function readHeaderFrom(file: FileHandle, path: string): Promise<SafetensorsHeader> {
  const { size } = await file.stat();
  const prefix = new Uint8Array(8);
  if (size >= 8) await readExactly(file, path, prefix, 0);
  const headerLength = parseHeaderLength(prefix, path, size);
  const json = new Uint8Array(headerLength);
  await readExactly(file, path, json, 8);
  return parseSafetensorsHeader(json, path, headerLength, size);
}

/** Read and strictly validate a safetensors header without reading any tensor data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await openFile(path);
  try {
    return await readHeaderFrom(file, path);
  } finally {
    await file.close();
  }
}

/** Values of a tensor's bytes in a tf dtype; `bytes` must start at offset 0 of its own buffer (aligned). */
export function decodeSafetensorsBytes(
  bytes: Uint8Array,
  info: SafetensorsTensorInfo,
  path: string,
): { values: Float32Array | Int32Array | Uint8Array; dtype: 'float32' | 'int32' | 'bool' } {
  const buffer = bytes.buffer;
  switch (info.dtype) {
    case 'F32':
      return { values: new Float32Array(buffer, 0, bytes.length / 4), dtype: 'float32' };
    case 'F16':
      return { values: float16ToFloat32(new Uint16Array(buffer, 0, bytes.length / 2)), dtype: 'float32' };
    case 'BF16':
      return { values: bfloat16ToFloat32(new Uint16Array(buffer, 0, bytes.length / 2)), dtype: 'float32' };
    case 'F64':
      return { values: new Float32Array(new Float64Array(buffer, 0, bytes.length / 8)), dtype: 'float32' };
    case 'I32':
      return { values: new Int32Array(buffer, 0, bytes.length / 4), dtype: 'int32' };
    case 'I16':
      return { values: new Int32Array(new Int16Array(buffer, 0, bytes.length / 2)), dtype: 'int32' };
    case 'I8':
      return { values: new Int32Array(new Int8Array(buffer, 0, bytes.length)), dtype: 'int32' };
    case 'U8':
      return { values: new Int32Array(bytes), dtype: 'int32' };
    case 'BOOL': {
      for (let i = 0; i < bytes.length; i++) if (bytes[i] > 1) bytes[i] = 1; // tf bool storage is 0/1
      return { values: bytes, dtype: 'bool' };
    }
    case 'I64': {
      // Each int64 is (low, high) int32 words; it fits int32 exactly when high is low's sign extension.
      const words = new Int32Array(buffer, 0, bytes.length / 4);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const low = words[2 * i];
        const high = words[2 * i + 1];
        if (high !== low >> 31) {
          const value = new BigInt64Array(buffer, 8 * i, 1)[0];
          throw new Error(
            `safetensors file ${path}: tensor '${info.name}' (I64) holds ${value} at flat index ${i}, ` +
              'outside the int32 range tfjs supports',
          );
        }
        out[i] = low;
      }
      return { values: out, dtype: 'int32' };
    }
  }
}

/** An open safetensors file: the validated header, then tensors read one at a time. Call close() when done. */
export class SafetensorsReader {
  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    private readonly file: FileHandle,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    if (endianness() !== 'LE') throw new Error('safetensors reading assumes a little-endian host');
    const file = await openFile(path);
    try {
      return new SafetensorsReader(path, await readHeaderFrom(file, path), file);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Tensor names in file order. */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) {
      const names = this.names();
      const sample = names.slice(0, 8).join(', ') + (names.length > 8 ? `, … (${names.length} in all)` : '');
      throw new Error(
        `safetensors file ${this.path}: no tensor named '${name}' (it has: ${sample || 'no tensors'})`,
      );
    }
    return info;
  }

  /** The raw little-endian bytes of one tensor, in a fresh (aligned) buffer. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const [begin, end] = info.dataOffsets;
    const bytes = new Uint8Array(end - begin);
    await readExactly(this.file, this.path, bytes, this.header.dataStart + begin);
    return bytes;
  }

  /** One tensor as float32 / int32 / bool; the raw bytes are dropped (or reused) right after conversion. */
  async readTensor(name: string): Promise<tf.Tensor> {
    const info = this.info(name);
    const { values, dtype } = decodeSafetensorsBytes(await this.readBytes(name), info, this.path);
    const tensor = tf.tensor(values, info.shape, dtype);
    const firstNonfinite = dtype === 'float32' ? firstNonfiniteIndex(values) : -1;
    origins.set(tensor, { file: this.path, name, dtype: info.dtype, firstNonfinite });
    return tensor;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

export interface LoadSafetensorsOptions {
  /** Which tensors to load (by their name in the file): a list (each must exist) or a predicate. */
  names?: string[] | ((name: string) => boolean);
  /** Map a file name to the name in the result; null skips the tensor. */
  rename?: (name: string) => string | null;
}

/** Pick and rename the tensors of one file; returns [file name, result name] pairs in file order. */
export function selectTensors(
  header: SafetensorsHeader,
  opts: LoadSafetensorsOptions,
  taken: Map<string, string> = new Map(),
): Array<[string, string]> {
  const { names, rename } = opts;
  if (Array.isArray(names)) {
    const missing = names.filter((n) => !header.tensors.has(n));
    if (missing.length) {
      throw new Error(`safetensors file ${header.path}: requested tensors not found: ${missing.join(', ')}`);
    }
  }
  let keep: (name: string) => boolean = () => true;
  if (Array.isArray(names)) {
    const wanted = new Set(names);
    keep = (n) => wanted.has(n);
  } else if (names) keep = names;
  const picked: Array<[string, string]> = [];
  for (const name of header.tensors.keys()) {
    if (!keep(name)) continue;
    const target = rename ? rename(name) : name;
    if (target === null) continue;
    const clash = taken.get(target);
    if (clash !== undefined) {
      throw new Error(
        `safetensors file ${header.path}: tensors '${clash}' and '${name}' both map to '${target}'`,
      );
    }
    taken.set(target, name);
    picked.push([name, target]);
  }
  return picked;
}

/** Read tensors from an open reader into `into`; on failure the tensors it created are disposed. */
export async function readSelected(
  reader: SafetensorsReader,
  picked: Array<[string, string]>,
  into: Map<string, tf.Tensor>,
): Promise<void> {
  for (const [name, target] of picked) into.set(target, await reader.readTensor(name));
}

/** Load a safetensors file tensor by tensor (never the whole file at once) into a name → tensor map. */
export async function loadSafetensors(
  path: string,
  opts: LoadSafetensorsOptions = {},
): Promise<Map<string, tf.Tensor>> {
  const reader = await SafetensorsReader.open(path);
  const result = new Map<string, tf.Tensor>();
  try {
    await readSelected(reader, selectTensors(reader.header, opts), result);
    return result;
  } catch (err) {
    for (const t of result.values()) t.dispose();
    throw err;
  } finally {
    await reader.close();
  }
}
