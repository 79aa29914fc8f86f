// Stopping criteria: max new tokens, EOS ids, stop strings; each says why generation stopped.

export type StopReason =
  | { type: 'max_new_tokens'; maxNewTokens: number }
  | { type: 'eos'; tokenId: number }
  /** `textBeforeStop` is the generated text up to (not including) the first occurrence of `stopString`. */
  | { type: 'stop_string'; stopString: string; textBeforeStop: string };

/** Looks at the tokens generated so far (prompt excluded) and returns a reason to stop, or null. */
export interface StoppingCriterion {
  check(generatedIds: readonly number[]): StopReason | null;
}

export function maxNewTokensCriterion(maxNewTokens: number): StoppingCriterion {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}.`);
  }
  return {
    check: (generatedIds) =>
      generatedIds.length >= maxNewTokens ? { type: 'max_new_tokens', maxNewTokens } : null,
  };
}

/** Stops when the last generated token is one of `eosTokenIds`. */
export function eosCriterion(eosTokenIds: readonly number[]): StoppingCriterion {
  const eos = new Set(eosTokenIds);
  return {
    check: (generatedIds) => {
      const last = generatedIds.at(-1);
      return last !== undefined && eos.has(last) ? { type: 'eos', tokenId: last } : null;
    },
  };
}

export interface StopStringMatch {
  stopString: string;
  index: number;
}

/** The earliest occurrence of any stop string in `text` (ties: the first listed), or null. */
export function findStopString(text: string, stopStrings: readonly string[]): StopStringMatch | null {
  let best: StopStringMatch | null = null;
  for (const stopString of stopStrings) {
    const index = text.indexOf(stopString);
    if (index >= 0 && (best === null || index < best.index)) best = { stopString, index };
  }
  return best;
}

/**
 * Stops once the decoded generated text contains a stop string. Decoding the whole generated text each
 * step (not token strings) catches stop strings that span tokens or end inside a token.
 */
export function stopStringCriterion(
  stopStrings: readonly string[],
  decode: (ids: readonly number[]) => string,
): StoppingCriterion {
  if (stopStrings.some((s) => s.length === 0))
    throw new Error('stopStrings must not contain an empty string.');
  return {
    check: (generatedIds) => {
      const text = decode(generatedIds);
      const match = findStopString(text, stopStrings);
      return match === null
        ? null
        : { type: 'stop_string', stopString: match.stopString, textBeforeStop: text.slice(0, match.index) };
    },
  };
}

/** Checks criteria in order and returns the first reason to stop. */
export class StoppingCriteriaList {
  constructor(readonly criteria: readonly StoppingCriterion[] = []) {}

  check(generatedIds: readonly number[]): StopReason | null {
    for (const criterion of this.criteria) {
      const reason = criterion.check(generatedIds);
      if (reason !== null) return reason;
    }
    return null;
  }
}

export interface StoppingOptions {
  maxNewTokens?: number;
  eosTokenIds?: readonly number[];
  stopStrings?: readonly string[];
  /** Decoder for stop strings, e.g. `(ids) => tokenizer.decode(ids, { skipSpecialTokens: true })`. */
  decode?: (ids: readonly number[]) => string;
}

/** EOS first, then stop strings, then the length limit, so the most specific reason is reported. */
export function buildStoppingCriteria(options: StoppingOptions): StoppingCriteriaList {
  const criteria: StoppingCriterion[] = [];
  if (options.eosTokenIds !== undefined && options.eosTokenIds.length > 0)
    criteria.push(eosCriterion(options.eosTokenIds));
  if (options.stopStrings !== undefined && options.stopStrings.length > 0) {
    if (options.decode === undefined)
      throw new Error('stopStrings need a decode function in the stopping options.');
    criteria.push(stopStringCriterion(options.stopStrings, options.decode));
  }
  if (options.maxNewTokens !== undefined) criteria.push(maxNewTokensCriterion(options.maxNewTokens));
  return new StoppingCriteriaList(criteria);
}
