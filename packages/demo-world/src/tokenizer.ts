// A small word-level tokenizer for the world, as a Hugging Face tokenizer.json that @huggingface/tokenizers loads.
//
// @huggingface/tokenizers 0.2.0 has no WordLevel model, so this is a BPE model with no merges and
// `ignore_merges: true`: a pre-tokenized piece that is in the vocabulary is one token; any other piece falls back
// to its characters (every printable ASCII character is in the vocabulary). Pieces come from a Split
// pre-tokenizer: a word with its leading space (` red`), a number (` 3`, `12`), one punctuation mark, or one
// whitespace character. The decoder (Fuse) concatenates the tokens, so decode(encode(x)) === x for any ASCII
// text; characters outside printable ASCII (other than \n, \t) become <unk>.
import {
  specialAddedToken,
  Tokenizer,
  type TokenizerConfigJSON,
  type TokenizerJSON,
  tokenizerJsonWithBos,
} from '@vistune/core';
import { type BoxFormat, DEFAULT_BOX_FORMAT } from './box-codec.js';
import { type WorldRecord, worldTextSources } from './instructions.js';
import { segmentationTextSources } from './segmentation.js';

export const WORLD_SPECIAL_TOKENS = {
  unk: '<unk>',
  bos: '<s>',
  eos: '</s>',
  pad: '<pad>',
  image: '<image>',
} as const;

const SPECIALS = [
  WORLD_SPECIAL_TOKENS.unk,
  WORLD_SPECIAL_TOKENS.bos,
  WORLD_SPECIAL_TOKENS.eos,
  WORLD_SPECIAL_TOKENS.pad,
  WORLD_SPECIAL_TOKENS.image,
];

/** The pre-tokenizer pattern (a Split with behavior Isolated); also used here to list the pieces of a text. */
export const WORLD_PIECE_PATTERN = ' ?[A-Za-z]+| ?[0-9]+| ?[^\\sA-Za-z0-9]|\\s';

/** Vicuna-style template: `USER: <image>\nWhat colour is the circle? ASSISTANT: red</s>USER: … ASSISTANT:`. */
export const WORLD_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + ' ' }}" +
  "{% else %}{% if message['role'] == 'user' %}{{ 'USER: ' }}{% else %}{{ 'ASSISTANT: ' }}{% endif %}" +
  "{% if message['content'] is string %}{{ message['content'] }}{% else %}" +
  "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}" +
  "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}" +
  "{% endif %}{% if message['role'] == 'user' %}{{ ' ' }}{% else %}{{ eos_token }}{% endif %}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/** The pieces the pre-tokenizer cuts `text` into (special tokens must be removed first). */
export function splitWorldPieces(text: string): string[] {
  return text.match(new RegExp(WORLD_PIECE_PATTERN, 'gu')) ?? [];
}

function withoutSpecials(text: string): string[] {
  let parts = [text];
  for (const special of SPECIALS) parts = parts.flatMap((part) => part.split(special));
  return parts;
}

/**
 * Every piece of the texts of `records` (human and gpt turns), in first-seen order. A turn's first word is
 * also added with a leading space: the chat template puts one before each turn (`ASSISTANT: red`), so that
 * is the form training text holds. `vistune tokenizer train` learns from the rendered text itself.
 */
export function vocabularyFromRecords(records: readonly WorldRecord[]): string[] {
  const pieces = new Set<string>();
  for (const record of records) {
    for (const turn of record.conversations) {
      const turnPieces = withoutSpecials(turn.value).flatMap(splitWorldPieces);
      for (const piece of turnPieces) pieces.add(piece);
      const first = turnPieces[0];
      if (first !== undefined && /^[A-Za-z0-9]/.test(first)) pieces.add(` ${first}`);
    }
  }
  return [...pieces];
}

/** The chat-template frame words (USER, ASSISTANT, ':') are part of every training text. */
const CHAT_FRAME = 'USER: ASSISTANT:';
/** Box text (`[4,6,13,15]`, `[0.125,…]`), which also appears after a space inside region questions. */
const BOX_SYNTAX = '[0,1] [0.5,1]';

export interface WorldVocabularyOptions {
  /**
   * Add the words of segmentation records (appended after the default pieces, so every default id stays).
   * The [SEG] token itself is not included: a model adds it with `tokenizer.addTokens(['[SEG]'], { special: true })`.
   */
  segmentation?: boolean;
}

/**
 * The world's vocabulary, from its word lists and sentence frames rather than from sampled data, so it does not
 * depend on the seed: every word and punctuation mark with and without a leading space, every printable ASCII
 * character (the fallback), numbers 0..bins (box coordinates) and ` 0`..` 10` (counts).
 */
export function worldVocabulary(
  boxFormat: BoxFormat = DEFAULT_BOX_FORMAT,
  options: WorldVocabularyOptions = {},
): string[] {
  const pieces = new Set<string>(['\n', '\t', ' ']);
  for (let code = 33; code < 127; code++) pieces.add(String.fromCharCode(code));
  const addWords = (texts: readonly string[]): void => {
    for (const text of texts) {
      for (const part of withoutSpecials(text.replace(/\{\w+\}/g, ' '))) {
        for (const piece of splitWorldPieces(part)) {
          const bare = piece.trimStart();
          if (bare.length === 0) continue;
          pieces.add(bare);
          pieces.add(` ${bare}`);
        }
      }
    }
  };
  addWords([...worldTextSources(), CHAT_FRAME, BOX_SYNTAX]);
  const maxNumber = boxFormat.format === 'grid' ? boxFormat.bins : 99;
  for (let n = 0; n <= maxNumber; n++) pieces.add(String(n));
  for (let n = 0; n <= 10; n++) pieces.add(` ${n}`);
  if (options.segmentation) addWords(segmentationTextSources());
  return [...pieces];
}

export interface WorldTokenizerFiles {
  tokenizerJson: TokenizerJSON;
  tokenizerConfig: TokenizerConfigJSON;
}

/** tokenizer.json and tokenizer_config.json for `vocabulary` (specials get ids 0-4: unk, bos, eos, pad, image). */
export function buildWorldTokenizer(vocabulary: readonly string[]): WorldTokenizerFiles {
  const vocab: Record<string, number> = {};
  for (const token of [...SPECIALS, ...vocabulary])
    if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  const addedTokens = SPECIALS.map((content, id) => specialAddedToken(id, content));
  const tokenizerJson = tokenizerJsonWithBos({
    addedTokens,
    preTokenizer: {
      type: 'Split',
      pattern: { Regex: WORLD_PIECE_PATTERN },
      behavior: 'Isolated',
      invert: false,
    },
    decoder: { type: 'Fuse' },
    bos: { token: WORLD_SPECIAL_TOKENS.bos, id: vocab[WORLD_SPECIAL_TOKENS.bos] as number },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: WORLD_SPECIAL_TOKENS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab,
      merges: [],
    },
  });
  const tokenizerConfig: TokenizerConfigJSON = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: WORLD_SPECIAL_TOKENS.bos,
    eos_token: WORLD_SPECIAL_TOKENS.eos,
    unk_token: WORLD_SPECIAL_TOKENS.unk,
    pad_token: WORLD_SPECIAL_TOKENS.pad,
    additional_special_tokens: [WORLD_SPECIAL_TOKENS.image],
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...entry }) => [String(id), entry])),
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    chat_template: WORLD_CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}

/**
 * Writes tokenizer.json and tokenizer_config.json for the world to `dir` (through core's Tokenizer, which also
 * proves they load) and returns the loaded tokenizer. Default vocabulary: `worldVocabulary()`; pass
 * `[...worldVocabulary(), ...vocabularyFromRecords(records)]` to cover extra text.
 */
export async function writeWorldTokenizer(
  dir: string,
  vocabulary: readonly string[] = worldVocabulary(),
): Promise<Tokenizer> {
  const { tokenizerJson, tokenizerConfig } = buildWorldTokenizer(vocabulary);
  const tokenizer = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
  await tokenizer.saveTo(dir);
  return Tokenizer.fromDir(dir);
}
