// The safetensors layout: u64 LE header length N, N bytes of JSON header, then the data buffer.
// Header entries: name → { dtype, shape, data_offsets: [begin, end) relative to the data start }.

/** The dtypes vistune reads and writes, with their byte sizes. */
export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** Same limit as the reference implementation: a larger header means a corrupt or hostile file. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  path: string;
  /** N, the JSON header length in bytes (padding included). */
  headerLength: number;
  /** Absolute file offset of the data section: 8 + N. */
  dataStart: number;
  dataLength: number;
  /** Tensors in file order (ascending offsets). */
  tensors: Map<string, SafetensorsTensorInfo>;
  /** The optional `__metadata__` string map (transformers writes { format: 'pt' }). */
  metadata: Record<string, string>;
}

export function isSafetensorsDtype(value: string): value is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BYTES, value);
}

function fail(path: string, what: string): never {
  throw new Error(`safetensors file ${path}: ${what}`);
}

/** Header length N from the first 8 bytes, checked against the file size before anything is allocated. */
export function parseHeaderLength(prefix: Uint8Array, path: string, fileSize: number): number {
  if (fileSize < 8)
    fail(path, `file is ${fileSize} bytes, too small for the 8-byte header length (truncated?)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    fail(
      path,
      `header length ${n} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit (not a safetensors file?)`,
    );
  }
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) {
    fail(path, `header length ${headerLength} runs past the end of the ${fileSize}-byte file (truncated?)`);
  }
  return headerLength;
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(path: string, name: string, raw: unknown): SafetensorsTensorInfo {
  const where = `tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(path, `${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(path, `${where}: missing string field 'dtype'`);
  if (!isSafetensorsDtype(dtype)) {
    const known = Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ');
    fail(path, `${where}: unsupported dtype '${dtype}' (vistune reads ${known})`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    fail(path, `${where}: 'shape' must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    fail(path, `${where}: 'data_offsets' must be [begin, end] byte offsets, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(path, `${where}: data_offsets [${begin}, ${end}] end before begin`);
  const elements = shape.reduce((a: number, b: number) => a * b, 1);
  const expectedBytes = elements * SAFETENSORS_DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(expectedBytes))
    fail(path, `${where}: shape ${JSON.stringify(shape)} is too large`);
  if (expectedBytes !== end - begin) {
    fail(
      path,
      `${where}: shape ${JSON.stringify(shape)} × ${dtype} (${SAFETENSORS_DTYPE_BYTES[dtype]} bytes) = ${expectedBytes} bytes, ` +
        `but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
    );
  }
  return { name, dtype, shape: shape as number[], dataOffsets: [begin, end] };
}

function parseMetadata(path: string, raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    fail(path, `'__metadata__' must be an object of strings`);
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string')
      fail(path, `'__metadata__.${key}' must be a string, got ${JSON.stringify(value)}`);
  }
  return { ...(raw as Record<string, string>) };
}

/**
 * Parse and strictly validate the JSON header: known dtypes, sizes that match shapes, offsets that tile the
 * data section exactly (sorted, no gaps, no overlaps, last end = data length).
 */
export function parseSafetensorsHeader(
  jsonBytes: Uint8Array,
  path: string,
  headerLength: number,
  fileSize: number,
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes));
  } catch (err) {
    fail(path, `header (${headerLength} bytes) is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail(path, 'header JSON is not an object');

  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const entries: SafetensorsTensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(path, raw);
    else entries.push(parseEntry(path, name, raw));
  }

  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous: SafetensorsTensorInfo | null = null;
  for (const t of entries) {
    const [begin, end] = t.dataOffsets;
    if (begin < cursor) {
      fail(
        path,
        `tensor '${t.name}': data_offsets [${begin}, ${end}] overlap tensor '${previous?.name}' (ends at ${cursor})`,
      );
    }
    if (begin > cursor) {
      const after = previous ? `after tensor '${previous.name}'` : 'at the start of the data section';
      fail(
        path,
        `tensor '${t.name}': data_offsets [${begin}, ${end}] leave a gap of ${begin - cursor} bytes ${after}`,
      );
    }
    if (end > dataLength) {
      fail(
        path,
        `tensor '${t.name}': data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data section (truncated file?)`,
      );
    }
    cursor = end;
    previous = t;
  }
  if (cursor !== dataLength) {
    const last = previous ? `last tensor '${previous.name}' ends at ${cursor}` : 'no tensors';
    fail(
      path,
      `data section is ${dataLength} bytes but ${last}: ${dataLength - cursor} trailing bytes not covered`,
    );
  }
  return {
    path,
    headerLength,
    dataStart,
    dataLength,
    tensors: new Map(entries.map((t) => [t.name, t])),
    metadata,
  };
}
