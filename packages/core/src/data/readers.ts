// Data files → records. JSONL streams line by line (the file is never held whole); a JSON array is parsed
// whole (JSON.parse needs the full text), so very large datasets should be JSONL.
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { type ParseRecordOptions, parseRecord, type RecordLocation, type SampleResult } from './samples.js';

export type RawRecord =
  | { location: RecordLocation; value: unknown }
  | { location: RecordLocation; error: string };

export type DataFileFormat = 'json' | 'jsonl';

/** `.jsonl` is JSONL; otherwise the first non-blank character decides: `[` is a JSON array, `{` JSONL. */
export async function detectFormat(file: string): Promise<DataFileFormat> {
  if (file.endsWith('.jsonl')) return 'jsonl';
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    for (let offset = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) return 'json';
      const first = buffer.subarray(0, bytesRead).toString('utf8').trimStart()[0];
      if (first !== undefined) return first === '{' ? 'jsonl' : 'json';
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

async function* jsonlRecords(file: string): AsyncGenerator<RawRecord> {
  const input = createReadStream(file, 'utf8');
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      try {
        yield { location: { file, line }, value: JSON.parse(text) as unknown };
      } catch (error) {
        yield { location: { file, line }, error: (error as Error).message };
      }
    }
  } finally {
    // A consumer that stops early (limit) must not leave the file open.
    lines.close();
    input.destroy();
  }
}

async function* jsonArrayRecords(file: string): AsyncGenerator<RawRecord> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
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
  for (let index = 0; index < parsed.length; index++)
    yield { location: { file, index }, value: parsed[index] };
}

/** Raw records of a LLaVA JSON array or JSONL file, in file order. Unparseable JSONL lines come back as errors. */
export async function* readRecords(file: string): AsyncGenerator<RawRecord> {
  yield* (await detectFormat(file)) === 'jsonl' ? jsonlRecords(file) : jsonArrayRecords(file);
}

export interface ReadSamplesOptions {
  /** Folder relative image paths are resolved against; default: the data file's folder. */
  imageFolder?: string;
}

/** Validated samples (or skip reasons) of one data file, in file order. */
export async function* readSamples(
  file: string,
  options: ReadSamplesOptions = {},
): AsyncGenerator<SampleResult> {
  for await (const { result } of readSamplesWithRecords(file, options)) yield result;
}

/** readSamples with each sample's raw record (the JSON value; undefined for an unparseable line). */
export async function* readSamplesWithRecords(
  file: string,
  options: ReadSamplesOptions = {},
): AsyncGenerator<{ result: SampleResult; record: unknown }> {
  const parseOptions: ParseRecordOptions = { imageFolder: options.imageFolder ?? dirname(file) };
  for await (const record of readRecords(file)) {
    if ('error' in record) {
      const where = `${record.location.file}:${record.location.line}`;
      yield {
        result: { ok: false, reason: 'invalid_json', message: `${where}: ${record.error}` },
        record: undefined,
      };
    } else {
      yield { result: parseRecord(record.value, record.location, parseOptions), record: record.value };
    }
  }
}
