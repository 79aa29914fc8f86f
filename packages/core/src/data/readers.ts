// Data files → records. JSONL streams line by line (the file is never held whole); a JSON array is parsed
// whole (JSON.parse needs the full text), so very large datasets should be JSONL. Text is decoded as strict
// UTF-8: bytes that are not UTF-8 skip their record (not_utf8) instead of becoming U+FFFD in training text.
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  checkMediaKinds,
  describeLocation,
  type ParseRecordOptions,
  parseRecord,
  type RecordLocation,
  type SampleResult,
} from './samples.js';

export type RawRecord =
  | { location: RecordLocation; value: unknown }
  | {
      location: RecordLocation;
      /** What is wrong with the line or element (the JSON parser's message, or where UTF-8 decoding failed). */
      error: string;
      reason: 'invalid_json' | 'not_utf8';
      /** The record's id when it could still be read from the text. */
      id?: string;
    };

export type DataFileFormat = 'json' | 'jsonl';

/** A data file that is missing or a folder is an error naming the path and where it came from. */
async function checkDataFile(file: string): Promise<void> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR')
      throw new Error(
        `data file not found: ${file} (check the recipe's data.train / data.val or --data; recipe paths are relative to the recipe file)`,
      );
    throw new Error(`cannot read data file ${file}: ${err.message}`);
  });
  if (info.isDirectory())
    throw new Error(
      `data file ${file} is a folder: give a LLaVA JSON or JSONL file (the folder of the media is data.images)`,
    );
}

/** `.jsonl` is JSONL; otherwise the first non-blank character decides: `[` is a JSON array, `{` JSONL. */
export async function detectFormat(file: string): Promise<DataFileFormat> {
  if (file.endsWith('.jsonl')) return 'jsonl';
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    for (let offset = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) return 'json';
      const first = buffer
        .subarray(0, bytesRead)
        .toString('utf8')
        .replace(/^\uFEFF/, '')
        .trimStart()[0];
      if (first !== undefined) return first === '{' ? 'jsonl' : 'json';
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lossyUtf8 = new TextDecoder('utf-8');

/** Whether `bytes` is UTF-8 so far; with `open`, a sequence cut at the end is not (yet) an error. */
function utf8Prefix(bytes: Uint8Array, open: boolean): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: open });
    return true;
  } catch {
    return false;
  }
}

/** Where the first sequence that is not UTF-8 starts (binary search: once a prefix is bad, longer ones are). */
function firstInvalidByte(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (utf8Prefix(bytes.subarray(0, mid), true)) lo = mid;
    else hi = mid - 1;
  }
  // bytes[lo] broke the decode; if a multi-byte sequence was still open, the error is its lead byte.
  if (utf8Prefix(bytes.subarray(0, lo), false)) return lo;
  let start = lo - 1;
  while (start > 0 && start > lo - 3 && bytes[start] < 0xc0) start--;
  return start;
}

/** A record id read from text that is not a parseable record (`"id": "x"` or `"id": 7`), best effort. */
function idInText(text: string): string | undefined {
  const match = /"id"\s*:\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?))/.exec(text);
  if (!match) return undefined;
  if (match[2] !== undefined) return match[2];
  try {
    return JSON.parse(match[1]) as string;
  } catch {
    return undefined;
  }
}

/** A line's bytes without the `\r` of a `\r\n` ending. */
const withoutCr = (line: Buffer) => (line.at(-1) === 13 ? line.subarray(0, -1) : line);

/** The file's lines as bytes (without `\n` or `\r\n`), streamed. */
async function* byteLines(file: string): AsyncGenerator<Buffer> {
  const input = createReadStream(file);
  let pending: Buffer[] = [];
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
        // Most lines lie inside one chunk: no copy unless a line spans chunks.
        const piece = chunk.subarray(start, end);
        const line = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        start = end + 1;
        yield withoutCr(line);
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) yield withoutCr(Buffer.concat(pending));
  } finally {
    // A consumer that stops early (limit) must not leave the file open.
    input.destroy();
  }
}

async function* jsonlRecords(file: string): AsyncGenerator<RawRecord> {
  let line = 0;
  for await (const bytes of byteLines(file)) {
    line++;
    const location = { file, line };
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      const at = firstInvalidByte(bytes);
      yield {
        location,
        reason: 'not_utf8',
        error: `byte ${at} of the line (0x${bytes[at].toString(16).padStart(2, '0')}) is not UTF-8: re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)`,
        id: idInText(lossyUtf8.decode(bytes)),
      };
      continue;
    }
    if (text.trim() === '') continue;
    try {
      yield { location, value: JSON.parse(text) as unknown };
    } catch (error) {
      yield { location, reason: 'invalid_json', error: (error as Error).message, id: idInText(text) };
    }
  }
}

/** U+FFFD as UTF-8 bytes: a file may hold it legitimately, which makes lossy decoding ambiguous. */
const REPLACEMENT_BYTES = Buffer.from('\uFFFD', 'utf8');

/**
 * A JSON array's text. Where bytes are not UTF-8, the lossy text is returned with `lossy` set, so elements
 * holding U+FFFD can be skipped as not_utf8; if the file also holds U+FFFD legitimately, that cannot be told
 * apart and the file is refused.
 */
async function readJsonText(file: string): Promise<{ text: string; lossy: boolean }> {
  const bytes = await readFile(file);
  try {
    return { text: strictUtf8.decode(bytes), lossy: false };
  } catch {
    const at = firstInvalidByte(bytes);
    if (bytes.includes(REPLACEMENT_BYTES))
      throw new Error(
        `${file} is not valid UTF-8 (byte ${at}) and also holds U+FFFD characters, so the bad records cannot be ` +
          'told apart: re-encode the file as UTF-8, or convert it to JSONL (one record per line), where each bad line is skipped alone.',
      );
    return { text: lossyUtf8.decode(bytes), lossy: true };
  }
}

async function* jsonArrayRecords(file: string): AsyncGenerator<RawRecord> {
  const { text, lossy } = await readJsonText(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file} is not valid JSON (${(error as Error).message}); a .json data file must be one array of ` +
        'records, or use JSONL (one record per line, .jsonl).',
    );
  }
  if (!Array.isArray(parsed))
    throw new Error(
      `${file} holds a JSON ${typeof parsed}, not an array of records: wrap the records in [ ].`,
    );
  for (let index = 0; index < parsed.length; index++) {
    const value: unknown = parsed[index];
    const location = { file, index };
    const json = lossy ? JSON.stringify(value) : '';
    if (lossy && json.includes('\uFFFD'))
      yield {
        location,
        reason: 'not_utf8',
        error:
          'the record holds bytes that are not UTF-8: re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)',
        id: idInText(json),
      };
    else yield { location, value };
  }
}

/** Raw records of a LLaVA JSON array or JSONL file, in file order. Unreadable lines come back as errors. */
export async function* readRecords(file: string): AsyncGenerator<RawRecord> {
  await checkDataFile(file);
  yield* (await detectFormat(file)) === 'jsonl' ? jsonlRecords(file) : jsonArrayRecords(file);
}

export interface ReadSamplesOptions extends Partial<Omit<ParseRecordOptions, 'imageFolder'>> {
  /** Folder relative media paths are resolved against; default: the data file's folder. */
  imageFolder?: string;
}

/** Validated samples (or skip reasons) of one data file, in file order. */
export async function* readSamples(
  file: string,
  options: ReadSamplesOptions = {},
): AsyncGenerator<SampleResult> {
  for await (const { result } of readSamplesWithRecords(file, options)) yield result;
}

/** readSamples with each sample's raw record (the JSON value; undefined for an unreadable line). */
export async function* readSamplesWithRecords(
  file: string,
  options: ReadSamplesOptions = {},
): AsyncGenerator<{ result: SampleResult; record: unknown }> {
  if (options.mediaKinds) checkMediaKinds(options.mediaKinds, `reading ${file}: mediaKinds`);
  const parseOptions: ParseRecordOptions = { ...options, imageFolder: options.imageFolder ?? dirname(file) };
  for await (const record of readRecords(file)) {
    if ('error' in record) {
      const { location, reason, error, id } = record;
      const where = describeLocation(location);
      yield {
        result: {
          ok: false,
          reason,
          message: id === undefined ? `${where}: ${error}` : `${where}: sample ${id}: ${error}`,
          location,
          ...(id === undefined ? {} : { id }),
        },
        record: undefined,
      };
    } else {
      yield { result: parseRecord(record.value, record.location, parseOptions), record: record.value };
    }
  }
}
