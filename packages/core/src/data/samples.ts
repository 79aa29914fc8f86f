// Records → samples: LLaVA conversations and instruction triplets, validated into one conversation shape.
import { basename, isAbsolute, resolve } from 'node:path';
import { mediaSkipReason, type Skip, type SkipReason, sampleSkip } from './stats.js';

/** The image marker of LLaVA data; each one stands for the next image of the sample. */
export const IMAGE_MARKER = '<image>';

/** A media kind as records carry it: its name is the record field, its marker stands for one item in the text. */
export interface MediaKindSpec {
  /** Record field with the item paths (a string or a list); `image` also reads LLaVA's `images`. */
  name: string;
  /** Placeholder in conversation text for one item (`<image>`, `<video>`). */
  marker: string;
}

/** LLaVA's only kind, and the default when a caller names none. */
export const IMAGE_KIND: MediaKindSpec = { name: 'image', marker: IMAGE_MARKER };

/** Longest turn (in characters) a record may hold by default: far beyond any context, short of a runaway field. */
export const DEFAULT_MAX_TURN_CHARS = 100_000;

export type TurnRole = 'system' | 'user' | 'assistant';

export interface Turn {
  role: TurnRole;
  /** Text with media markers (`<image>`, …) where the items go. */
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
  /** Image paths, resolved against the media folder, in marker order (= media.image). */
  images: string[];
  /** Item paths per media kind, resolved, in marker order (images included); absent: images only. */
  media?: Record<string, string[]>;
  /** An optional system turn first, then user / assistant turns alternating, starting with user. */
  turns: Turn[];
  location: RecordLocation;
  /** Notes for DataStats: markers were prepended; a leading assistant turn was dropped. */
  markersPrepended: boolean;
  leadingAssistantDropped: boolean;
}

export type SampleResult = { ok: true; sample: Sample } | Skip;

export interface ParseRecordOptions {
  /** Folder that relative media paths (every kind) are resolved against. */
  imageFolder: string;
  /** The media kinds records may carry (default: image only); fields of other kinds are not read. */
  mediaKinds?: readonly MediaKindSpec[];
  /** Longest turn in characters (default DEFAULT_MAX_TURN_CHARS); longer records are skipped as turn_too_long. */
  maxTurnChars?: number;
}

/** Item paths per kind of a sample or example (`media`, else its images as kind `image`). */
export function mediaOf(item: {
  images: readonly string[];
  media?: Readonly<Record<string, readonly string[]>>;
}): Readonly<Record<string, readonly string[]>> {
  return item.media ?? (item.images.length > 0 ? { image: item.images } : {});
}

/** Throws when kinds repeat a name or a marker, or a marker is empty: markers must be told apart in text. */
export function checkMediaKinds(kinds: readonly MediaKindSpec[], where: string): void {
  const names = new Set<string>();
  const markers = new Set<string>();
  for (const { name, marker } of kinds) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name))
      throw new Error(
        `${where}: media kind name "${name}" must be a record field name (letters, digits, _).`,
      );
    if (marker === '')
      throw new Error(`${where}: media kind ${name} has an empty marker; use e.g. "<${name}>".`);
    if (names.has(name)) throw new Error(`${where}: media kind ${name} is listed twice.`);
    if (markers.has(marker))
      throw new Error(`${where}: two media kinds use the marker ${marker}; give each kind its own marker.`);
    names.add(name);
    markers.add(marker);
  }
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

/** `a number`, `null`, `a list` … for messages about a value of the wrong type. */
function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function pathList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw new RecordError('invalid_record', `${field} must be a string or a list of strings`);
}

const isSet = (value: unknown) => value !== undefined && value !== null;

/** Item paths per kind from `holder` (the record, or a triplet's input): the field named like the kind. */
function mediaFields(
  holder: Record<string, unknown> | undefined,
  kinds: readonly MediaKindSpec[],
  prefix: string,
): Record<string, string[]> {
  const media: Record<string, string[]> = {};
  for (const { name } of kinds) {
    // LLaVA writes images as `image` (one or a list) or `images`.
    const field = name === 'image' && !isSet(holder?.image) && isSet(holder?.images) ? 'images' : name;
    if (name === 'image' && isSet(holder?.image) && isSet(holder?.images))
      throw new RecordError('invalid_record', `${prefix}image and ${prefix}images are both set; keep one`);
    media[name] = pathList(holder?.[field], `${prefix}${field}`);
  }
  return media;
}

function checkTurnLength(text: string, field: string, maxTurnChars: number): void {
  if (text.length > maxTurnChars)
    throw new RecordError(
      'turn_too_long',
      `${field} has ${text.length} characters, more than maxTurnChars ${maxTurnChars}: shorten it, or raise the limit (recipe data.maxTurnChars)`,
    );
}

/** LLaVA: {id, image?, conversations: [{from, value}]}. */
function llavaTurns(record: Record<string, unknown>, maxTurnChars: number): Turn[] {
  const conversations = record.conversations;
  if (!Array.isArray(conversations))
    throw new RecordError(
      'invalid_record',
      `conversations is ${describeType(conversations)}; it must be a list of {from, value}`,
    );
  if (conversations.length === 0)
    throw new RecordError('empty_conversation', 'conversations is an empty list: nothing to train on');
  return conversations.map((turn, i) => {
    if (!isObject(turn))
      throw new RecordError(
        'invalid_record',
        `conversations[${i}] is ${describeType(turn)}; it must be {from, value}`,
      );
    const role = typeof turn.from === 'string' ? ROLES[turn.from] : undefined;
    if (role === undefined)
      throw new RecordError(
        'unknown_role',
        `conversations[${i}].from is ${JSON.stringify(turn.from)}; use human, gpt or system`,
      );
    if (typeof turn.value !== 'string')
      throw new RecordError(
        'value_not_string',
        `conversations[${i}].value is ${describeType(turn.value)}; it must be a string`,
      );
    checkTurnLength(turn.value, `conversations[${i}].value`, maxTurnChars);
    return { role, text: turn.value };
  });
}

/** A triplet's text field: missing is a malformed record, present but not a string is value_not_string. */
function tripletText(value: unknown, field: string): string {
  if (typeof value !== 'string')
    throw new RecordError(
      value === undefined ? 'invalid_record' : 'value_not_string',
      `a triplet's ${field} is ${describeType(value)}; it must be a string`,
    );
  return value;
}

/** Survey triplet: {instruction, input?: {image?, <kind>?, text?}, output} → one exchange. */
function tripletTurns(
  record: Record<string, unknown>,
  kinds: readonly MediaKindSpec[],
  maxTurnChars: number,
): { turns: Turn[]; media: Record<string, string[]> } {
  const { input } = record;
  const instruction = tripletText(record.instruction, 'instruction');
  const output = tripletText(record.output, 'output');
  if (input !== undefined && input !== null && !isObject(input))
    throw new RecordError('invalid_record', 'input must be an object {image?, text?}');
  const text = input?.text === undefined ? undefined : tripletText(input.text, 'input.text');
  const user = text ? `${instruction}\n${text}` : instruction;
  checkTurnLength(user, 'instruction + input.text', maxTurnChars);
  checkTurnLength(output, 'output', maxTurnChars);
  return {
    turns: [
      { role: 'user', text: user },
      { role: 'assistant', text: output },
    ],
    media: mediaFields(input ?? undefined, kinds, 'input.'),
  };
}

function countMarkers(text: string, marker: string): number {
  return text.split(marker).length - 1;
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

/**
 * Per kind: items without any marker get one marker each in front of the first user turn (LLaVA does this
 * for images); otherwise the marker count must equal the item count. Returns whether markers were added.
 */
function placeMarkers(
  turns: Turn[],
  media: Readonly<Record<string, readonly string[]>>,
  kinds: readonly MediaKindSpec[],
): boolean {
  let prefix = '';
  for (const { name, marker } of kinds) {
    const items = media[name].length;
    const markers = turns.reduce((n, t) => n + countMarkers(t.text, marker), 0);
    if (markers === 0 && items > 0) prefix += `${marker}\n`.repeat(items);
    else if (markers !== items)
      throw new RecordError(
        mediaSkipReason(name, 'count_mismatch'),
        `${markers} ${marker} marker(s) but ${items} ${name}(s)`,
      );
  }
  if (prefix === '') return false;
  const first = turns.findIndex((t) => t.role === 'user');
  turns[first] = { role: 'user', text: prefix + turns[first].text };
  return true;
}

function parseOrThrow(
  value: Record<string, unknown>,
  id: string,
  location: RecordLocation,
  options: ParseRecordOptions,
): Sample {
  const kinds = options.mediaKinds ?? [IMAGE_KIND];
  const maxTurnChars = options.maxTurnChars ?? DEFAULT_MAX_TURN_CHARS;
  const raw =
    'conversations' in value
      ? { turns: llavaTurns(value, maxTurnChars), media: mediaFields(value, kinds, '') }
      : 'instruction' in value
        ? tripletTurns(value, kinds, maxTurnChars)
        : undefined;
  if (!raw)
    throw new RecordError(
      'invalid_record',
      'expected LLaVA {conversations: [...]} or a triplet {instruction, input, output}',
    );
  const { turns, leadingAssistantDropped } = orderTurns(raw.turns);
  const markersPrepended = placeMarkers(turns, raw.media, kinds);
  const media = Object.fromEntries(
    Object.entries(raw.media).map(([kind, paths]) => [
      kind,
      paths.map((p) => (isAbsolute(p) ? p : resolve(options.imageFolder, p))),
    ]),
  );
  return {
    id,
    images: media.image ?? [],
    media,
    turns,
    location,
    markersPrepended,
    leadingAssistantDropped,
  };
}

/** The record's id (a string or number field), else `<file name>:<line or index>`. */
function recordId(value: Record<string, unknown>, location: RecordLocation): string {
  if (typeof value.id === 'string' || typeof value.id === 'number') return String(value.id);
  return `${basename(location.file)}:${location.line ?? location.index ?? '?'}`;
}

/** Validates one parsed record; bad records come back as a reason and a message naming where they are. */
export function parseRecord(
  value: unknown,
  location: RecordLocation,
  options: ParseRecordOptions,
): SampleResult {
  const where = describeLocation(location);
  if (!isObject(value))
    return {
      ok: false,
      reason: 'invalid_record',
      message: `${where}: a record must be a JSON object`,
      location,
    };
  const id = recordId(value, location);
  try {
    return { ok: true, sample: parseOrThrow(value, id, location, options) };
  } catch (error) {
    if (!(error instanceof RecordError)) throw error;
    return sampleSkip(error.reason, { location, id }, error.message);
  }
}
