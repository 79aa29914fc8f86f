// DataStats: what happened to every record between the file and the batches (read, used, skipped and why).

/** Why a record never reaches a batch. */
export type SkipReason =
  /** A JSONL line that is not valid JSON. */
  | 'invalid_json'
  /** Not an object, or missing / mistyped fields (conversations, from, value, image, …). */
  | 'invalid_record'
  /** Turns that do not alternate user / assistant after an optional leading system turn. */
  | 'bad_turn_order'
  /** The number of `<image>` markers differs from the number of images. */
  | 'image_count_mismatch'
  /** An image file that does not exist. */
  | 'image_missing'
  /** maxLength would cut through (or drop) an image's placeholder run. */
  | 'image_truncated'
  /** No supervised token left (no assistant turn, or truncation removed all of them). */
  | 'no_supervised_tokens'
  /** The conversation does not fit the template (plain needs one exchange; an HF template whose prefixes disagree). */
  | 'template_mismatch'
  /** A head's targets do not match its trigger tokens in the ids (one target per trigger, see HeadTargetsReader). */
  | 'targets_mismatch';

export const SKIP_REASONS: readonly SkipReason[] = [
  'invalid_json',
  'invalid_record',
  'bad_turn_order',
  'image_count_mismatch',
  'image_missing',
  'image_truncated',
  'no_supervised_tokens',
  'template_mismatch',
  'targets_mismatch',
];

export interface DataStats {
  /** Records read from the files (valid or not). */
  samplesRead: number;
  /** Records that became training examples. */
  samplesUsed: number;
  skipped: Record<SkipReason, number>;
  /** The first few messages per reason, each naming the file, line / index and sample id. */
  messages: string[];
  /** Examples cut to maxLength (kept: they still have supervised tokens and whole images). */
  truncated: number;
  /** Samples with images but no `<image>` marker, which got one marker per image prepended (LLaVA). */
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
}

/** Messages kept per skip reason. */
const MESSAGES_PER_REASON = 3;

export function emptyDataStats(): DataStats {
  return {
    samplesRead: 0,
    samplesUsed: 0,
    skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>,
    messages: [],
    truncated: 0,
    markersPrepended: 0,
    leadingAssistantDropped: 0,
    retokenizedBoundaries: 0,
    withoutTerminator: 0,
    totalTokens: 0,
    supervisedTokens: 0,
    images: 0,
  };
}

/** Counts a skipped record; keeps its message if it is among the first few of its reason. */
export function recordSkip(stats: DataStats, reason: SkipReason, message: string): void {
  stats.skipped[reason]++;
  if (stats.skipped[reason] <= MESSAGES_PER_REASON) stats.messages.push(`${reason}: ${message}`);
}

export function skippedTotal(stats: DataStats): number {
  return SKIP_REASONS.reduce((n, r) => n + stats.skipped[r], 0);
}

/** A few lines for logs: counts, then the kept messages. */
export function formatDataStats(stats: DataStats): string {
  const skipped = SKIP_REASONS.filter((r) => stats.skipped[r] > 0)
    .map((r) => `${r} ${stats.skipped[r]}`)
    .join(', ');
  const lines = [
    `samples: ${stats.samplesRead} read, ${stats.samplesUsed} used, ${skippedTotal(stats)} skipped${skipped ? ` (${skipped})` : ''}`,
    `tokens: ${stats.totalTokens} total, ${stats.supervisedTokens} supervised; images: ${stats.images}`,
    `notes: ${stats.truncated} truncated, ${stats.markersPrepended} with <image> markers prepended, ` +
      `${stats.leadingAssistantDropped} leading assistant turns dropped, ${stats.retokenizedBoundaries} retokenized boundaries, ` +
      `${stats.withoutTerminator} answers not ending in a special token`,
  ];
  return [...lines, ...stats.messages.map((m) => `  ${m}`)].join('\n');
}
