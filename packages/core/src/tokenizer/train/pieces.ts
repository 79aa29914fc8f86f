// Pre-tokenization for training: the same byte-level pieces @huggingface/tokenizers cuts a text into when it
// encodes with the tokenizer.json this module writes (special tokens first, then the GPT-2 ByteLevel regex).
import { ByteLevelPreTokenizer } from '@huggingface/tokenizers';

/** The tokenizer.json pre_tokenizer of trained tokenizers (GPT-2 byte level: ` red` is one piece, `Ġred`). */
export const BYTE_LEVEL_PRE_TOKENIZER = {
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: true,
} as const;

const preTokenizer = new ByteLevelPreTokenizer(BYTE_LEVEL_PRE_TOKENIZER);

/** Byte (0..255) → its printable stand-in in byte-level pieces (space → `Ġ`, newline → `Ċ`). */
export const BYTE_SYMBOLS: readonly string[] = Array.from({ length: 256 }, (_, b) => {
  const symbol = preTokenizer.byte_encoder[b];
  if (symbol === undefined) throw new Error(`ByteLevel pre-tokenizer has no symbol for byte ${b}`);
  return symbol;
});

const BYTE_OF_SYMBOL = new Map(BYTE_SYMBOLS.map((symbol, byte) => [symbol, byte]));

/** A byte-level piece back to its text (`Ġred` → ` red`). */
export function pieceText(piece: string): string {
  const bytes = Uint8Array.from(Array.from(piece), (symbol) => {
    const byte = BYTE_OF_SYMBOL.get(symbol);
    if (byte === undefined) throw new Error(`"${piece}" is not a byte-level piece (symbol "${symbol}")`);
    return byte;
  });
  return new TextDecoder().decode(bytes);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Cuts texts into byte-level pieces as the tokenizer will: special tokens are matched verbatim first (longest
 * first, as the library's added-token splitter does) and never become pieces themselves.
 */
export class PieceSplitter {
  private readonly specials: RegExp | null;

  constructor(specialTokens: readonly string[]) {
    const sorted = [...new Set(specialTokens)]
      .filter((t) => t.length > 0)
      .sort((a, b) => b.length - a.length);
    this.specials = sorted.length ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : null;
  }

  /** The pieces of `text`, in order. */
  pieces(text: string): string[] {
    const parts = this.specials ? text.split(this.specials) : [text];
    return parts.flatMap((part) => (part ? preTokenizer.pre_tokenize_text(part) : []));
  }
}

/** How often each piece occurs in `texts` (first-seen order). */
export function countPieces(texts: Iterable<string>, splitter: PieceSplitter): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts)
    for (const piece of splitter.pieces(text)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  return counts;
}
