// Logits processors: pure functions on one row of next-token logits, with Hugging Face `generate` semantics.

/** Maps a row of next-token logits to a new row, given every token id so far (prompt + generated). */
export type LogitsProcessor = (logits: Float32Array, inputIds: readonly number[]) => Float32Array;

/** logits / temperature (HF TemperatureLogitsWarper); temperature must be > 0 (use greedy decoding for 0). */
export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  if (!(temperature > 0)) {
    throw new Error(
      `temperature must be > 0, got ${temperature}; for deterministic output use greedy decoding.`,
    );
  }
  return logits.map((value) => value / temperature);
}

/** Keeps the `k` largest logits (ties with the k-th value are kept too) and sets the rest to -Infinity. */
export function topKFilter(logits: Float32Array, k: number): Float32Array {
  if (!Number.isInteger(k) || k < 0) throw new Error(`topK must be a non-negative integer, got ${k}.`);
  if (k === 0 || k >= logits.length) return logits.slice();
  const kthLargest = logits.slice().sort().reverse()[k - 1];
  return logits.map((value) => (value < kthLargest ? -Infinity : value));
}

/** Softmax in float64 (-Infinity → probability 0). */
export function softmaxProbabilities(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  const probs = new Float64Array(logits.length);
  if (max === -Infinity)
    throw new Error('softmaxProbabilities: every logit is -Infinity; the processors removed all tokens.');
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  return probs;
}

/**
 * Nucleus filter (HF TopPLogitsWarper): keep the smallest set of most likely tokens whose probabilities
 * sum to >= p, never fewer than `minTokensToKeep`; the rest become -Infinity.
 */
export function topPFilter(logits: Float32Array, p: number, minTokensToKeep = 1): Float32Array {
  if (!(p >= 0 && p <= 1)) throw new Error(`topP must be in [0, 1], got ${p}.`);
  if (p === 1) return logits.slice();
  const probs = softmaxProbabilities(logits);
  const order = Array.from(probs.keys()).sort((a, b) => probs[a] - probs[b]); // ascending, as HF sorts
  const filtered = logits.slice();
  // HF removes the low tail whose cumulative probability is <= 1 - p.
  let cumulative = 0;
  for (let rank = 0; rank < order.length - minTokensToKeep; rank++) {
    cumulative += probs[order[rank]];
    if (cumulative > 1 - p) break;
    filtered[order[rank]] = -Infinity;
  }
  return filtered;
}

/**
 * HF RepetitionPenaltyLogitsProcessor: for each distinct token already in `inputIds`, a positive logit is
 * divided by `penalty` and a negative one multiplied by it, so penalty > 1 makes repeats less likely.
 */
export function applyRepetitionPenalty(
  logits: Float32Array,
  inputIds: readonly number[],
  penalty: number,
): Float32Array {
  if (!(penalty > 0)) throw new Error(`repetitionPenalty must be > 0, got ${penalty}.`);
  const penalized = logits.slice();
  for (const id of new Set(inputIds)) {
    if (id < 0 || id >= logits.length) continue; // placeholders such as image sentinels are not vocabulary rows
    const value = logits[id];
    penalized[id] = value < 0 ? value * penalty : value / penalty;
  }
  return penalized;
}

/** Sets the given token ids to -Infinity. */
export function suppressTokens(logits: Float32Array, tokenIds: readonly number[]): Float32Array {
  const suppressed = logits.slice();
  for (const id of tokenIds) if (id >= 0 && id < logits.length) suppressed[id] = -Infinity;
  return suppressed;
}

export const temperatureProcessor =
  (temperature: number): LogitsProcessor =>
  (logits) =>
    applyTemperature(logits, temperature);

export const topKProcessor =
  (k: number): LogitsProcessor =>
  (logits) =>
    topKFilter(logits, k);

export const topPProcessor =
  (p: number, minTokensToKeep = 1): LogitsProcessor =>
  (logits) =>
    topPFilter(logits, p, minTokensToKeep);

export const repetitionPenaltyProcessor =
  (penalty: number): LogitsProcessor =>
  (logits, inputIds) =>
    applyRepetitionPenalty(logits, inputIds, penalty);

/** HF MinNewTokensLengthLogitsProcessor: EOS is impossible until `minNewTokens` tokens follow the prompt. */
export const minNewTokensProcessor =
  (promptLength: number, minNewTokens: number, eosTokenIds: readonly number[]): LogitsProcessor =>
  (logits, inputIds) =>
    inputIds.length - promptLength < minNewTokens ? suppressTokens(logits, eosTokenIds) : logits;

/** Applies processors in order, like HF LogitsProcessorList. */
export class LogitsProcessorList {
  constructor(readonly processors: readonly LogitsProcessor[] = []) {}

  apply(logits: Float32Array, inputIds: readonly number[]): Float32Array {
    let current = logits;
    for (const processor of this.processors) current = processor(current, inputIds);
    return current;
  }
}

export interface LogitsProcessorOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  minNewTokens?: number;
  /** Length of the prompt in `inputIds`; needed with `minNewTokens`. */
  promptLength?: number;
  eosTokenIds?: readonly number[];
}

/**
 * The processors HF `generate` builds, in its order: repetition penalty, min-new-tokens, then the sampling
 * warpers temperature, top-k, top-p. Options at their neutral value (1, 0, undefined) add nothing.
 */
export function buildLogitsProcessors(options: LogitsProcessorOptions): LogitsProcessorList {
  const processors: LogitsProcessor[] = [];
  const { repetitionPenalty, minNewTokens, temperature, topK, topP } = options;
  if (repetitionPenalty !== undefined && repetitionPenalty !== 1)
    processors.push(repetitionPenaltyProcessor(repetitionPenalty));
  if (minNewTokens !== undefined && minNewTokens > 0) {
    if (options.promptLength === undefined || options.eosTokenIds === undefined) {
      throw new Error('minNewTokens needs promptLength and eosTokenIds in the logits processor options.');
    }
    processors.push(minNewTokensProcessor(options.promptLength, minNewTokens, options.eosTokenIds));
  }
  if (temperature !== undefined && temperature !== 1) processors.push(temperatureProcessor(temperature));
  if (topK !== undefined && topK > 0) processors.push(topKProcessor(topK));
  if (topP !== undefined && topP < 1) processors.push(topPProcessor(topP));
  return new LogitsProcessorList(processors);
}
