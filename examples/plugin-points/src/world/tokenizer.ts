// A word-level tokenizer for the world as a Hugging Face tokenizer.json: a WordPiece model over the world's
// words (lower-cased), so each word is one token and an unknown word falls back to letters (`##x` pieces).
// Whitespace is not a token: the chat template may put spaces and newlines anywhere without changing ids,
// so training (hf template over records) and generate/chat (parts rendered by the same template) agree.
import { Tokenizer, type TokenizerConfigJSON, type TokenizerJSON } from '@vistune/core';

export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>', '<points>'] as const;
/** Id of `<points>`, the modality's placeholder_token_id. */
export const POINTS_TOKEN_ID = SPECIAL_TOKENS.indexOf('<points>');

/** `USER: <points>\nWhat shape is this? ASSISTANT: cube</s>`; non-text parts (media) are rendered by vistune as text. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}" +
  "{% else %}{{ 'USER: ' if message['role'] == 'user' else 'ASSISTANT: ' }}" +
  "{% if message['content'] is string %}{{ message['content'] }}{% else %}" +
  "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% if not loop.last %}{{ '\\n' }}{% endif %}{% endif %}{% endfor %}" +
  "{% endif %}{% if message['role'] == 'user' %}{{ ' ' }}{% else %}{{ eos_token }}{% endif %}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/** Words and punctuation of `texts` (lower-cased, as the normalizer sees them), letters and digits, in first-seen order. */
export function vocabulary(texts: readonly string[]): string[] {
  const words = new Set<string>();
  for (const text of texts) for (const w of text.toLowerCase().match(/\w+|[^\w\s]/g) ?? []) words.add(w);
  for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789') words.add(ch).add(`##${ch}`);
  return [...words];
}

/** The tokenizer for `words` (specials first: ids 0-4, registered as special added tokens). */
export function buildTokenizer(words: readonly string[]): Tokenizer {
  const vocab: Record<string, number> = {};
  for (const w of [...SPECIAL_TOKENS, ...words]) vocab[w] ??= Object.keys(vocab).length;
  const json: TokenizerJSON = {
    version: '1.0',
    truncation: null,
    padding: null,
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [vocab['<s>']], tokens: ['<s>'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '<unk>',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  const config: TokenizerConfigJSON = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    additional_special_tokens: ['<points>'],
    clean_up_tokenization_spaces: true,
    model_max_length: 512,
    chat_template: CHAT_TEMPLATE,
  };
  const tokenizer = Tokenizer.fromJSON(json, config);
  // Matched before normalisation and skipped by decode(skipSpecialTokens); they keep their vocab ids.
  tokenizer.addTokens(SPECIAL_TOKENS, { special: true });
  return tokenizer;
}

/** Writes the tokenizer folder and returns it loaded back (which proves the files load). */
export async function writeTokenizer(dir: string, texts: readonly string[]): Promise<Tokenizer> {
  await buildTokenizer(vocabulary(texts)).saveTo(dir);
  return Tokenizer.fromDir(dir);
}
