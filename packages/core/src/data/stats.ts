// DataStats: what happened to every record between the file and the batches (read, used, skipped and why).
import { describeLocation, type RecordLocation } from './samples.js';

/** What can go wrong with one media kind's items; the skip reason is `<kind>_<problem>` (image_missing, video_truncated). */
export type MediaProblem = 'missing' | 'count_mismatch' | 'truncated';

/** Per media kind: `image_missing`, `video_count_mismatch`, `audio_truncated`, … (see MediaProblem). */
export type MediaSkipReason = `${string}_${MediaProblem}`;

/** Why a record never reaches a batch. */
export type SkipReason =
  /** A JSONL line that is not valid JSON. */
  | 'invalid_json'
  /** A JSONL line (or a JSON array's string) holding bytes that are not UTF-8; never decoded into U+FFFD. */
  | 'not_utf8'
  /** Not an object, or missing / mistyped fields (conversations, instruction, image, …). */
  | 'invalid_record'
  /** `conversations` is an empty list. */
  | 'empty_conversation'
  /** A turn's `from` is not human / user, gpt / assistant or system. */
  | 'unknown_role'
  /** A turn's `value` (or a triplet's instruction, input.text, output) is not a string. */
  | 'value_not_string'
  /** A turn longer than maxTurnChars characters (tokenizing it would be slow and truncation would drop it). */
  | 'turn_too_long'
  /** Turns that do not alternate user / assistant after an optional leading system turn. */
  | 'bad_turn_order'
  /** The number of `<image>` markers differs from the number of images (other kinds: `<kind>_count_mismatch`). */
  | 'image_count_mismatch'
  /** An image file that does not exist (other kinds: `<kind>_missing`). */
  | 'image_missing'
  /** maxLength would cut through (or drop) an image's placeholder run (other kinds: `<kind>_truncated`). */
  | 'image_truncated'
  /** No supervised token left (no assistant turn, or truncation removed all of them). */
  | 'no_supervised_tokens'
  /** The conversation does not fit the template (plain needs one exchange; an HF template whose prefixes disagree). */
  | 'template_mismatch'
  /** A head's targets do not match its trigger tokens in the ids (one target per trigger, see HeadTargetsReader). */
  | 'targets_mismatch'
  | MediaSkipReason;

/** The reasons every DataStats counts (from 0), in report order; other media kinds' reasons follow when seen. */
export const SKIP_REASONS: readonly SkipReason[] = [
  'invalid_json',
  'not_utf8',
  'invalid_record',
  'empty_conversation',
  'unknown_role',
  'value_not_string',
  'turn_too_long',
  'bad_turn_order',
  'image_count_mismatch',
  'image_missing',
  'image_truncated',
  'no_supervised_tokens',
  'template_mismatch',
  'targets_mismatch',
];

/** The skip reason for a problem with one media kind's items. */
export function mediaSkipReason(kind: string, problem: MediaProblem): MediaSkipReason {
  return `${kind}_${problem}`;
}

/** One skipped record as reported: where it is (`file:line` / `file[index]`), its id when known, and why. */
export interface SkippedRecord {
  where: string;
  id?: string;
  message: string;
}

/** A skip as the readers and builders return it: the reason, a message naming the record, and its origin. */
export interface Skip {
  ok: false;
  reason: SkipReason;
  /** `<file:line>: sample <id>: <what is wrong and the fix>`. */
  message: string;
  location?: RecordLocation;
  id?: string;
}

/** A skip of a record whose id is known: the message reads `<file:line>: sample <id>: <detail>`. */
export function sampleSkip(
  reason: SkipReason,
  origin: { location: RecordLocation; id: string },
  detail: string,
): Skip {
  const { location, id } = origin;
  return {
    ok: false,
    reason,
    message: `${describeLocation(location)}: sample ${id}: ${detail}`,
    location,
    id,
  };
}

export interface DataStats {
  /** Records read from the files (valid or not). */
  samplesRead: number;
  /** Records that became training examples. */
  samplesUsed: number;
  /** Per reason (every SKIP_REASONS entry, plus other media kinds' reasons once seen). */
  skipped: Record<SkipReason, number>;
  /** The first few skipped records per reason (where, id, message). */
  skippedRecords: Record<SkipReason, SkippedRecord[]>;
  /** The first few messages per reason as `<reason>: <message>` lines, in the order they happened. */
  messages: string[];
  /** Examples cut to maxLength (kept: they still have supervised tokens and whole media runs). */
  truncated: number;
  /** Samples with items of a kind but none of its markers, which got one marker per item prepended (LLaVA). */
  markersPrepended: number;
  /** Samples whose first turn was from the assistant and was dropped (LLaVA). */
  leadingAssistantDropped: number;
  /** Segment boundaries where tokenizing the longer prefix changed the tokens before the boundary. */
  retokenizedBoundaries: number;
  /** Untruncated examples whose last supervised token is not a special token (EOS, `<|im_end|>`, …): the
   * model does not learn to stop (by design for plain, whose terminator is "\n"; HF templates without one). */
  withoutTerminator: number;
  /** Over the used examples: all positions, supervised positions, images. */
  totalTokens: number;
  supervisedTokens: number;
  images: number;
  /** Over the used examples: items per media kind (images included). */
  media: Record<string, number>;
}

/** Records kept per skip reason for reports. */
const RECORDS_PER_REASON = 3;

export function emptyDataStats(): DataStats {
  return {
    samplesRead: 0,
    samplesUsed: 0,
    skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>,
    skippedRecords: {} as Record<SkipReason, SkippedRecord[]>,
    messages: [],
    truncated: 0,
    markersPrepended: 0,
    leadingAssistantDropped: 0,
    retokenizedBoundaries: 0,
    withoutTerminator: 0,
    totalTokens: 0,
    supervisedTokens: 0,
    images: 0,
    media: {},
  };
}

/** Counts a skipped record; keeps its message, location and id if it is among the first few of its reason. */
export function recordSkip(
  stats: DataStats,
  reason: SkipReason,
  message: string,
  origin: { location?: RecordLocation; id?: string } = {},
): void {
  stats.skipped[reason] = (stats.skipped[reason] ?? 0) + 1;
  if (stats.skipped[reason] > RECORDS_PER_REASON) return;
  stats.messages.push(`${reason}: ${message}`);
  const record: SkippedRecord = {
    // Messages start with the location (`file:line: …`), which stands in when the caller gave none.
    where: origin.location ? describeLocation(origin.location) : message.split(': ')[0],
    ...(origin.id === undefined ? {} : { id: origin.id }),
    message,
  };
  stats.skippedRecords[reason] = [...(stats.skippedRecords[reason] ?? []), record];
}

/** Counts one used example's media items per kind (and images). */
export function countMedia(stats: DataStats, media: Readonly<Record<string, readonly string[]>>): void {
  for (const [kind, paths] of Object.entries(media)) {
    if (paths.length === 0) continue;
    stats.media[kind] = (stats.media[kind] ?? 0) + paths.length;
    if (kind === 'image') stats.images += paths.length;
  }
}

/** The reasons with at least one skip: SKIP_REASONS order, then other media kinds' reasons as first seen. */
function reasonsSeen(stats: DataStats): SkipReason[] {
  const extra = (Object.keys(stats.skipped) as SkipReason[]).filter((r) => !SKIP_REASONS.includes(r));
  return [...SKIP_REASONS, ...extra].filter((r) => (stats.skipped[r] ?? 0) > 0);
}

export function skippedTotal(stats: DataStats): number {
  return Object.values(stats.skipped).reduce((n, count) => n + count, 0);
}

/** `image 12, video 3` (or `none`). */
function mediaCounts(stats: DataStats): string {
  const kinds = Object.entries(stats.media).filter(([, n]) => n > 0);
  return kinds.length === 0 ? 'none' : kinds.map(([kind, n]) => `${kind} ${n}`).join(', ');
}

/**
 * The summary printed after loading: kept / skipped per reason, the first few skipped records of each reason
 * (`file:line id`, then the first one's message), token and media counts, and the notes.
 */
export function formatDataStats(stats: DataStats): string {
  const reasons = reasonsSeen(stats);
  const skipped = reasons.map((r) => `${r} ${stats.skipped[r]}`).join(', ');
  const lines = [
    `samples: ${stats.samplesRead} read, ${stats.samplesUsed} used, ${skippedTotal(stats)} skipped${skipped ? ` (${skipped})` : ''}`,
    `tokens: ${stats.totalTokens} total, ${stats.supervisedTokens} supervised; images: ${stats.images}; media: ${mediaCounts(stats)}`,
    `notes: ${stats.truncated} truncated, ${stats.markersPrepended} with media markers prepended, ` +
      `${stats.leadingAssistantDropped} leading assistant turns dropped, ${stats.retokenizedBoundaries} retokenized boundaries, ` +
      `${stats.withoutTerminator} answers not ending in a special token`,
  ];
  for (const reason of reasons) {
    const records = stats.skippedRecords[reason] ?? [];
    const more = stats.skipped[reason] - records.length;
    const at = records.map((r) => (r.id === undefined ? r.where : `${r.where} ${r.id}`)).join(', ');
    lines.push(`skipped ${reason} ${stats.skipped[reason]}: ${at}${more > 0 ? `, … ${more} more` : ''}`);
    if (records.length > 0) lines.push(`  e.g. ${records[0].message}`);
  }
  return lines.join('\n');
}

/** The stats as plain JSON (for `--json` outputs): kept, skipped per reason with examples, totals, notes. */
export interface DataStatsJson {
  read: number;
  kept: number;
  skipped: {
    total: number;
    reasons: Record<string, { count: number; examples: SkippedRecord[] }>;
  };
  tokens: { total: number; supervised: number };
  media: Record<string, number>;
  notes: {
    truncated: number;
    markersPrepended: number;
    leadingAssistantDropped: number;
    retokenizedBoundaries: number;
    withoutTerminator: number;
  };
}

export function dataStatsJson(stats: DataStats): DataStatsJson {
  return {
    read: stats.samplesRead,
    kept: stats.samplesUsed,
    skipped: {
      total: skippedTotal(stats),
      reasons: Object.fromEntries(
        reasonsSeen(stats).map((r) => [
          r,
          { count: stats.skipped[r], examples: (stats.skippedRecords[r] ?? []).map((x) => ({ ...x })) },
        ]),
      ),
    },
    tokens: { total: stats.totalTokens, supervised: stats.supervisedTokens },
    media: { ...stats.media },
    notes: {
      truncated: stats.truncated,
      markersPrepended: stats.markersPrepended,
      leadingAssistantDropped: stats.leadingAssistantDropped,
      retokenizedBoundaries: stats.retokenizedBoundaries,
      withoutTerminator: stats.withoutTerminator,
    },
  };
}
