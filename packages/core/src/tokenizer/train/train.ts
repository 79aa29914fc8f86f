// Training a tokenizer on a corpus: a byte-level BPE (merges learnt) or a word-level vocabulary (whole pieces,
// characters as the fallback), written as a standard tokenizer.json + tokenizer_config.json that
// @huggingface/tokenizers (JS and Python) loads. The JS package has no trainers and no WordLevel model, so the
// word level is a BPE model with no merges and `ignore_merges: true`: a piece in the vocabulary is one token,
// any other piece falls back to its byte symbols.
import { Tokenizer } from '../tokenizer.js';
import type { AddedTokenJSON, TokenizerConfigJSON, TokenizerJSON } from '../tokenizer-files.js';
import { trainBpe } from './bpe.js';
import { BYTE_LEVEL_PRE_TOKENIZER, BYTE_SYMBOLS, countPieces, PieceSplitter, pieceText } from './pieces.js';

export const TOKENIZER_MODEL_KINDS = ['bpe', 'wordlevel'] as const;
export type TokenizerModelKind = (typeof TOKENIZER_MODEL_KINDS)[number];

/** The four special tokens every trained tokenizer has (ids 0-3 in this order: unk, bos, eos, pad). */
export interface CoreSpecialTokens {
  unk: string;
  bos: string;
  eos: string;
  pad: string;
}

export const DEFAULT_SPECIAL_TOKENS: CoreSpecialTokens = {
  unk: '<unk>',
  bos: '<s>',
  eos: '</s>',
  pad: '<pad>',
};

export interface TrainTokenizerOptions {
  /** Default 'bpe'. */
  model?: TokenizerModelKind;
  /** Ids in all: special tokens, the byte alphabet and the learnt tokens. */
  vocabSize: number;
  /** Default DEFAULT_SPECIAL_TOKENS. */
  specialTokens?: Partial<CoreSpecialTokens>;
  /** More special tokens (media markers `<image>`, template tokens `<|im_start|>`, `[SEG]`), ids 4, 5, … */
  additionalSpecialTokens?: readonly string[];
  /** Pieces (word level) or pairs (BPE) seen fewer times are not added. Default 2. */
  minFrequency?: number;
  /**
   * Start from all 256 byte symbols, so no text ever becomes <unk>. Default false: printable ASCII, tab,
   * newline and every byte of the corpus (a smaller table for small models).
   */
  allBytes?: boolean;
  /** tokenizer_config.json `chat_template` (Jinja). */
  chatTemplate?: string;
  /** tokenizer_config.json `model_max_length`. Default 2048. */
  modelMaxLength?: number;
}

/** A word of the corpus that encodes as more than one token. */
export interface SplitWord {
  text: string;
  occurrences: number;
  tokens: number;
}

export interface TokenizerTrainingReport {
  model: TokenizerModelKind;
  /** Ids of the trained tokenizer (what a model's vocab_size must be at least). */
  vocabSize: number;
  /** Ids asked for; more than vocabSize when the corpus had nothing left to add. */
  requestedVocabSize: number;
  specialTokens: string[];
  alphabetSize: number;
  merges: number;
  /** Pieces of the corpus holding a letter or digit (` red`, `12`), counted per occurrence and per distinct. */
  words: { occurrences: number; distinct: number };
  /** Of those, the ones that encode as more than one token. */
  split: { occurrences: number; distinct: number; share: number };
  /** The most frequent split words (at most 10). */
  splitExamples: SplitWord[];
}

export interface TrainedTokenizer {
  tokenizerJson: TokenizerJSON;
  tokenizerConfig: TokenizerConfigJSON;
  /** The files loaded (proof that @huggingface/tokenizers reads them). */
  tokenizer: Tokenizer;
  report: TokenizerTrainingReport;
}

const WORD = /[\p{L}\p{N}]/u;
const PRINTABLE_ASCII = [9, 10, ...Array.from({ length: 95 }, (_, i) => 32 + i)];

/** Byte symbols the vocabulary starts from, in byte order. */
function alphabetFor(pieceCounts: ReadonlyMap<string, number>, allBytes: boolean): string[] {
  if (allBytes) return [...BYTE_SYMBOLS];
  const used = new Set(PRINTABLE_ASCII.map((b) => BYTE_SYMBOLS[b]));
  for (const piece of pieceCounts.keys()) for (const symbol of piece) used.add(symbol);
  return BYTE_SYMBOLS.filter((symbol) => used.has(symbol));
}

/** The most frequent multi-symbol pieces (ties: first seen), as many as fit. */
function wordLevelTokens(
  pieceCounts: ReadonlyMap<string, number>,
  room: number,
  minFrequency: number,
): string[] {
  return [...pieceCounts]
    .filter(([piece, count]) => Array.from(piece).length > 1 && count >= minFrequency)
    .sort((a, b) => b[1] - a[1])
    .slice(0, Math.max(0, room))
    .map(([piece]) => piece);
}

/** A special added token matched verbatim (as transformers saves `additional_special_tokens`). */
export function specialAddedToken(id: number, content: string): AddedTokenJSON {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** The parts of a tokenizer.json that differ between tokenizers which prepend BOS to every sequence. */
export interface BosTokenizerParts {
  addedTokens: AddedTokenJSON[];
  preTokenizer: Record<string, unknown>;
  decoder: Record<string, unknown>;
  model: TokenizerJSON['model'];
  bos: { token: string; id: number };
}

/** A tokenizer.json (format 1.0, no normalizer) whose post-processor puts BOS before each sequence. */
export function tokenizerJsonWithBos(parts: BosTokenizerParts): TokenizerJSON {
  const bos = parts.bos.token;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: parts.addedTokens,
    normalizer: null,
    pre_tokenizer: parts.preTokenizer,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [parts.bos.id], tokens: [bos] } },
    },
    decoder: parts.decoder,
    model: parts.model,
  };
}

function tokenizerFiles(
  specials: CoreSpecialTokens,
  additional: readonly string[],
  vocabulary: readonly string[],
  merges: readonly [string, string][],
  kind: TokenizerModelKind,
  options: TrainTokenizerOptions,
): { tokenizerJson: TokenizerJSON; tokenizerConfig: TokenizerConfigJSON } {
  const specialList = [specials.unk, specials.bos, specials.eos, specials.pad, ...additional];
  // A Map first: a corpus word such as `__proto__` must stay an ordinary key.
  const ids = new Map<string, number>();
  for (const token of [...specialList, ...vocabulary]) if (!ids.has(token)) ids.set(token, ids.size);
  const vocab = Object.fromEntries(ids);
  const addedTokens = specialList.map((content, id) => specialAddedToken(id, content));
  const tokenizerJson = tokenizerJsonWithBos({
    addedTokens,
    preTokenizer: { ...BYTE_LEVEL_PRE_TOKENIZER },
    decoder: { ...BYTE_LEVEL_PRE_TOKENIZER },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: specials.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      // Only where needed: Python `tokenizers` before 0.19 rejects the field.
      ...(kind === 'wordlevel' ? { ignore_merges: true } : {}),
      vocab,
      // "a b" strings (byte-level symbols hold no space), the form every version of the format reads.
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
    bos: { token: specials.bos, id: ids.get(specials.bos) as number },
  });
  const tokenizerConfig: TokenizerConfigJSON = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: specials.bos,
    eos_token: specials.eos,
    unk_token: specials.unk,
    pad_token: specials.pad,
    additional_special_tokens: [...additional],
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...entry }) => [String(id), entry])),
    clean_up_tokenization_spaces: false,
    model_max_length: options.modelMaxLength ?? 2048,
    ...(options.chatTemplate === undefined ? {} : { chat_template: options.chatTemplate }),
  };
  return { tokenizerJson, tokenizerConfig };
}

/** How many words of the corpus the tokenizer splits, by encoding each distinct word once. */
function splitStatistics(
  tokenizer: Tokenizer,
  pieceCounts: ReadonlyMap<string, number>,
): Pick<TokenizerTrainingReport, 'words' | 'split' | 'splitExamples'> {
  const words = { occurrences: 0, distinct: 0 };
  const split = { occurrences: 0, distinct: 0, share: 0 };
  const examples: SplitWord[] = [];
  for (const [piece, occurrences] of pieceCounts) {
    const text = pieceText(piece);
    if (!WORD.test(text)) continue;
    words.occurrences += occurrences;
    words.distinct++;
    const tokens = tokenizer.encode(text, { addSpecialTokens: false }).length;
    if (tokens <= 1) continue;
    split.occurrences += occurrences;
    split.distinct++;
    examples.push({ text, occurrences, tokens });
  }
  split.share = words.occurrences ? split.occurrences / words.occurrences : 0;
  examples.sort((a, b) => b.occurrences - a.occurrences);
  return { words, split, splitExamples: examples.slice(0, 10) };
}

/**
 * Trains a tokenizer on `texts`, which should be the training text exactly as the conversation template
 * renders it (role words, the leading spaces before answers, the terminators): the pieces are cut as the
 * tokenizer will cut them at training time, so ` red` after `ASSISTANT:` is learnt as one token.
 */
export function trainTokenizer(texts: Iterable<string>, options: TrainTokenizerOptions): TrainedTokenizer {
  const kind = options.model ?? 'bpe';
  if (!TOKENIZER_MODEL_KINDS.includes(kind))
    throw new Error(`tokenizer model "${kind}": use one of ${TOKENIZER_MODEL_KINDS.join(', ')}`);
  const specials = { ...DEFAULT_SPECIAL_TOKENS, ...options.specialTokens };
  const core = [specials.unk, specials.bos, specials.eos, specials.pad];
  if (new Set(core).size !== 4 || core.some((t) => t.length === 0))
    throw new Error(
      `special tokens unk/bos/eos/pad must be four different non-empty strings, got ${core.join(', ')}`,
    );
  const additional = [...new Set(options.additionalSpecialTokens ?? [])].filter((t) => !core.includes(t));
  if (additional.some((t) => t.length === 0))
    throw new Error('additional special tokens must be non-empty strings');
  const specialCount = core.length + additional.length;
  const minFrequency = options.minFrequency ?? 2;

  const pieceCounts = countPieces(texts, new PieceSplitter([...core, ...additional]));
  const alphabet = alphabetFor(pieceCounts, options.allBytes ?? false);
  const smallest = specialCount + alphabet.length;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < smallest)
    throw new Error(
      `vocab size ${options.vocabSize} is too small: the ${specialCount} special tokens and the ${alphabet.length} ` +
        `byte symbols of this corpus take ${smallest} ids; ask for more than ${smallest}`,
    );
  let learnt: string[];
  let merges: [string, string][] = [];
  if (kind === 'bpe') {
    const result = trainBpe({
      pieceCounts,
      alphabet,
      reservedIds: specialCount,
      vocabSize: options.vocabSize,
      minFrequency,
    });
    learnt = result.tokens;
    merges = result.merges;
  } else {
    learnt = wordLevelTokens(pieceCounts, options.vocabSize - smallest, minFrequency);
  }
  const files = tokenizerFiles(specials, additional, [...alphabet, ...learnt], merges, kind, options);
  const tokenizer = Tokenizer.fromJSON(files.tokenizerJson, files.tokenizerConfig);
  return {
    ...files,
    tokenizer,
    report: {
      model: kind,
      vocabSize: tokenizer.vocabSize,
      requestedVocabSize: options.vocabSize,
      specialTokens: [...core, ...additional],
      alphabetSize: alphabet.length,
      merges: merges.length,
      ...splitStatistics(tokenizer, pieceCounts),
    },
  };
}
