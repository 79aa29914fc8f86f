// Incremental detokenisation: feed token ids one by one, get back only text that is complete.

/**
 * Decodes a growing token sequence piece by piece. Each `put` decodes a short window (the last emitted
 * tokens as context + the pending ones) and returns the new suffix, or '' while the text ends in U+FFFD
 * (a character whose UTF-8 bytes are split over byte-fallback tokens). The context tokens keep the
 * decoder's word-boundary rules (e.g. LLaMA's leading-space strip) the same as for a full decode, so the
 * pieces concatenate to `decode(allIds)`.
 */
export class DecodeStream {
  private context: number[] = [];
  private contextText = '';
  private pending: number[] = [];
  private emitted = '';

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** Adds one token; returns the newly completed text ('' if nothing is complete yet). */
  put(tokenId: number): string {
    this.pending.push(tokenId);
    const text = this.decode([...this.context, ...this.pending]);
    if (text.endsWith('\uFFFD') || text.length <= this.contextText.length) return '';
    return this.emit(text);
  }

  /** Returns whatever is still pending (an unfinished byte sequence decodes as U+FFFD) and resets the window. */
  flush(): string {
    if (this.pending.length === 0) return '';
    const piece = this.emit(this.decode([...this.context, ...this.pending]));
    this.context = [];
    this.contextText = '';
    return piece;
  }

  /** All text returned so far. */
  get text(): string {
    return this.emitted;
  }

  private emit(text: string): string {
    const piece = text.slice(this.contextText.length);
    this.context = this.pending;
    this.contextText = this.decode(this.context);
    this.pending = [];
    this.emitted += piece;
    return piece;
  }
}
