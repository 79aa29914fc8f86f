// Byte-pair-encoding training (Sennrich et al.; the algorithm of the Rust `tokenizers` BpeTrainer): start from
// single symbols and repeatedly merge the most frequent adjacent pair across the weighted pieces. Only the
// words holding the merged pair are updated, and a lazy max-heap finds the next pair.

export interface BpeTrainingInput {
  /** Piece → occurrences (byte-level pieces; each symbol is one UTF-16 code unit). */
  pieceCounts: ReadonlyMap<string, number>;
  /** Symbols that start the vocabulary (after any reserved ids), in id order; every piece symbol must be here. */
  alphabet: readonly string[];
  /** Ids before the alphabet (special tokens): merges are numbered after them. */
  reservedIds: number;
  /** Total vocabulary size to stop at (reserved ids and alphabet included). */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged. */
  minFrequency: number;
}

export interface BpeTrainingResult {
  /** New tokens in id order (ids follow the alphabet). */
  tokens: string[];
  /** Merges in rank order, as [left, right]. */
  merges: [string, string][];
}

interface HeapEntry {
  count: number;
  left: number;
  right: number;
}

/** Higher count first; ties go to the pair of smaller ids, as the Rust trainer breaks them. */
function before(a: HeapEntry, b: HeapEntry): boolean {
  if (a.count !== b.count) return a.count > b.count;
  return a.left !== b.left ? a.left < b.left : a.right < b.right;
}

class PairHeap {
  private readonly items: HeapEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  push(entry: HeapEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): HeapEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && before(items[l], items[best])) best = l;
        if (r < items.length && before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

/** Pair key of two symbol ids (ids stay far below 2^26). */
const pairKey = (left: number, right: number): number => left * 67_108_864 + right;

export function trainBpe(input: BpeTrainingInput): BpeTrainingResult {
  const { alphabet, reservedIds, vocabSize, minFrequency } = input;
  const idOf = new Map<string, number>();
  const symbols: string[] = [];
  for (const symbol of alphabet) {
    if (idOf.has(symbol)) throw new Error(`trainBpe: the alphabet lists "${symbol}" twice`);
    idOf.set(symbol, reservedIds + symbols.length);
    symbols.push(symbol);
  }
  const symbolOf = (id: number) => symbols[id - reservedIds];

  const words: number[][] = [];
  const weights: number[] = [];
  for (const [piece, count] of input.pieceCounts) {
    const ids = Array.from(piece, (symbol) => {
      const id = idOf.get(symbol);
      if (id === undefined)
        throw new Error(`trainBpe: symbol "${symbol}" of "${piece}" is not in the alphabet`);
      return id;
    });
    words.push(ids);
    weights.push(count);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPairs = (w: number, sign: 1 | -1) => {
    const word = words[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const key = pairKey(word[i], word[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * weights[w]);
      if (sign === 1) {
        const set = pairWords.get(key);
        if (set) set.add(w);
        else pairWords.set(key, new Set([w]));
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);
  for (const [key, count] of pairCounts)
    heap.push({ count, left: Math.floor(key / 67_108_864), right: key % 67_108_864 });

  const tokens: string[] = [];
  const merges: [string, string][] = [];
  const mergedPairs = new Set<number>();
  while (reservedIds + symbols.length < vocabSize && heap.size > 0) {
    const top = heap.pop() as HeapEntry;
    const key = pairKey(top.left, top.right);
    const current = pairCounts.get(key) ?? 0;
    if (current !== top.count) {
      // Stale entry: the pair's count changed since it was pushed; queue it again with the true count.
      if (current > 0) heap.push({ ...top, count: current });
      continue;
    }
    if (current < Math.max(1, minFrequency)) break;
    const left = symbolOf(top.left);
    const right = symbolOf(top.right);
    const merged = left + right;
    // A pair can form again when a later merge spells an existing token; its rank is the first one.
    if (!mergedPairs.has(key)) merges.push([left, right]);
    mergedPairs.add(key);
    let mergedId = idOf.get(merged);
    if (mergedId === undefined) {
      mergedId = reservedIds + symbols.length;
      idOf.set(merged, mergedId);
      symbols.push(merged);
      tokens.push(merged);
    }
    const changed = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const word = words[w];
      let holds = false;
      for (let i = 0; i + 1 < word.length && !holds; i++)
        holds = word[i] === top.left && word[i + 1] === top.right;
      if (!holds) continue;
      for (let i = 0; i + 1 < word.length; i++) changed.add(pairKey(word[i], word[i + 1]));
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === top.left && word[i + 1] === top.right) {
          next.push(mergedId);
          i++;
        } else next.push(word[i]);
      }
      words[w] = next;
      addPairs(w, 1);
      for (let i = 0; i + 1 < next.length; i++) changed.add(pairKey(next[i], next[i + 1]));
    }
    pairCounts.delete(key);
    pairWords.delete(key);
    for (const k of changed) {
      const count = pairCounts.get(k) ?? 0;
      if (count > 0) heap.push({ count, left: Math.floor(k / 67_108_864), right: k % 67_108_864 });
      else pairCounts.delete(k);
    }
  }
  return { tokens, merges };
}
