// Records → samples: LLaVA conversations and instruction triplets, validated into one conversation shape.
import { basename, isAbsolute, resolve } from 'node:path';
import type { SkipReason } from './stats.js';

/** The image marker of LLaVA data; each one stands for the next image of the sample. */
export const IMAGE_MARKER = '<image>';

export type TurnRole = 'system' | 'user' | 'assistant';

export interface Turn {
  role: TurnRole;
  /** Text with `<image>` markers where the images go. */
  text: string;
}

/** Where a record came from: the file and its JSONL line (1-based) or JSON array index (0-based). */
export interface RecordLocation {
  file: string;
  line?: number;
  index?: number;
}

export interface Sample {
  id: string;
  /** Image paths, resolved against the image folder, in marker order. */
  images: string[];
  /** An optional system turn first, then user / assistant turns alternating, starting with user. */
  turns: Turn[];
  location: RecordLocation;
  /** Notes for DataStats: markers were prepended; a leading assistant turn was dropped. */
  markersPrepended: boolean;
  leadingAssistantDropped: boolean;
}

export type SampleResult = { ok: true; sample: Sample } | { ok: false; reason: SkipReason; message: string };

export interface ParseRecordOptions {
  /** Folder that relative image paths are resolved against. */
  imageFolder: string;
}

const ROLES: Readonly<Record<string, TurnRole>> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

export function describeLocation(location: RecordLocation): string {
  if (location.line !== undefined) return `${location.file}:${location.line}`;
  if (location.index !== undefined) return `${location.file}[${location.index}]`;
  return location.file;
}

/** Thrown inside parsing for one bad record; turned into a SampleResult, never escapes. */
class RecordError extends Error {
  constructor(
    readonly reason: SkipReason,
    message: string,
  ) {
    super(message);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function imageList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw new RecordError('invalid_record', `${field} must be a string or a list of strings`);
}

/** LLaVA: {id, image?, conversations: [{from, value}]}. */
function llavaTurns(record: Record<string, unknown>): Turn[] {
  const conversations = record.conversations;
  if (!Array.isArray(conversations) || conversations.length === 0)
    throw new RecordError('invalid_record', 'conversations must be a non-empty list of {from, value}');
  return conversations.map((turn, i) => {
    if (!isObject(turn) || typeof turn.value !== 'string')
      throw new RecordError(
        'invalid_record',
        `conversations[${i}] must be {from, value} with a string value`,
      );
    const role = typeof turn.from === 'string' ? ROLES[turn.from] : undefined;
    if (role === undefined)
      throw new RecordError(
        'invalid_record',
        `conversations[${i}].from is ${JSON.stringify(turn.from)}; use human, gpt or system`,
      );
    return { role, text: turn.value };
  });
}

/** Survey triplet: {instruction, input?: {image?, text?}, output} → one exchange. */
function tripletTurns(record: Record<string, unknown>): { turns: Turn[]; images: string[] } {
  const { instruction, input, output } = record;
  if (typeof instruction !== 'string' || typeof output !== 'string')
    throw new RecordError('invalid_record', 'a triplet needs string instruction and output');
  if (input !== undefined && input !== null && !isObject(input))
    throw new RecordError('invalid_record', 'input must be an object {image?, text?}');
  const text = input?.text;
  if (text !== undefined && typeof text !== 'string')
    throw new RecordError('invalid_record', 'input.text must be a string');
  const user = text ? `${instruction}\n${text}` : instruction;
  return {
    turns: [
      { role: 'user', text: user },
      { role: 'assistant', text: output },
    ],
    images: imageList(input?.image, 'input.image'),
  };
}

function countMarkers(text: string): number {
  return text.split(IMAGE_MARKER).length - 1;
}

/** Leading system turn, LLaVA's drop of a leading assistant turn, then strict user/assistant alternation. */
function orderTurns(turns: Turn[]): { turns: Turn[]; leadingAssistantDropped: boolean } {
  const system = turns[0]?.role === 'system' ? [turns[0]] : [];
  let rest = turns.slice(system.length);
  const leadingAssistantDropped = rest[0]?.role === 'assistant';
  if (leadingAssistantDropped) rest = rest.slice(1);
  if (rest.length === 0) throw new RecordError('bad_turn_order', 'no user turn');
  rest.forEach((turn, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (turn.role !== expected)
      throw new RecordError(
        'bad_turn_order',
        `turn ${i + system.length} is ${turn.role} where ${expected} was expected (turns alternate user/assistant after one optional system turn)`,
      );
  });
  return { turns: [...system, ...rest], leadingAssistantDropped };
}

function parseOrThrow(value: unknown, location: RecordLocation, options: ParseRecordOptions): Sample {
  if (!isObject(value)) throw new RecordError('invalid_record', 'a record must be a JSON object');
  const fallbackId = `${basename(location.file)}:${location.line ?? location.index ?? '?'}`;
  const id = typeof value.id === 'string' || typeof value.id === 'number' ? String(value.id) : fallbackId;
  try {
    const raw =
      'conversations' in value
        ? { turns: llavaTurns(value), images: imageList(value.image, 'image') }
        : 'instruction' in value
          ? tripletTurns(value)
          : undefined;
    if (!raw)
      throw new RecordError(
        'invalid_record',
        'expected LLaVA {conversations: [...]} or a triplet {instruction, input, output}',
      );
    const { turns, leadingAssistantDropped } = orderTurns(raw.turns);
    const markers = turns.reduce((n, t) => n + countMarkers(t.text), 0);
    const markersPrepended = markers === 0 && raw.images.length > 0;
    if (markersPrepended) {
      // LLaVA: an image without a marker goes in front of the first user message.
      const first = turns.findIndex((t) => t.role === 'user');
      turns[first] = {
        role: 'user',
        text: `${IMAGE_MARKER}\n`.repeat(raw.images.length) + turns[first].text,
      };
    } else if (markers !== raw.images.length) {
      throw new RecordError(
        'image_count_mismatch',
        `${markers} ${IMAGE_MARKER} marker(s) but ${raw.images.length} image(s)`,
      );
    }
    const images = raw.images.map((p) => (isAbsolute(p) ? p : resolve(options.imageFolder, p)));
    return { id, images, turns, location, markersPrepended, leadingAssistantDropped };
  } catch (error) {
    if (error instanceof RecordError) throw new RecordError(error.reason, `sample ${id}: ${error.message}`);
    throw error;
  }
}

/** Validates one parsed record; bad records come back as a reason and a message naming where they are. */
export function parseRecord(
  value: unknown,
  location: RecordLocation,
  options: ParseRecordOptions,
): SampleResult {
  try {
    return { ok: true, sample: parseOrThrow(value, location, options) };
  } catch (error) {
    if (!(error instanceof RecordError)) throw error;
    return { ok: false, reason: error.reason, message: `${describeLocation(location)}: ${error.message}` };
  }
}
