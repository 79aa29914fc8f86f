// JSON files of a model folder (config.json, index files, …) with errors that name the file and the field.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { formatZodIssues } from '../registry/zod-issues.js';
import { errnoCode, fsError } from './fs-errors.js';

export interface ReadJsonOptions<S extends z.ZodType = z.ZodType> {
  /** Appended to the not-found error, e.g. 'expected a Hugging Face model folder with config.json'. */
  hint?: string;
  /** Validate (and type) the parsed value; issues are reported with their field paths. */
  schema?: S;
  /** Accept any JSON value; by default the file must hold an object (a config of `null` or `[]` is an error). */
  anyValue?: boolean;
}

/** Read and parse a JSON file; `what` names it in errors ("model config", "shard index", …). */
export async function readJsonFile(
  path: string,
  what: string,
  opts?: { hint?: string; anyValue?: boolean },
): Promise<unknown>;
export async function readJsonFile<S extends z.ZodType>(
  path: string,
  what: string,
  opts: ReadJsonOptions<S> & { schema: S },
): Promise<z.output<S>>;
export async function readJsonFile(path: string, what: string, opts: ReadJsonOptions = {}): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new Error(`${what} not found: ${path}${opts.hint ? ` (${opts.hint})` : ''}`);
    if (code === 'EISDIR')
      throw new Error(`${what} ${path} is a directory, expected a JSON file: remove or rename the folder`);
    throw fsError(err, path, `read the ${what}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!opts.anyValue && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    const held = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new Error(
      `${what} ${path} holds ${held}, expected a JSON object: restore or re-export the file${opts.hint ? ` (${opts.hint})` : ''}`,
    );
  }
  if (!opts.schema) return value;
  const parsed = opts.schema.safeParse(value);
  if (!parsed.success) {
    throw new Error(`${what} ${path} is invalid:\n  ${formatZodIssues(parsed.error).join('\n  ')}`);
  }
  return parsed.data;
}
