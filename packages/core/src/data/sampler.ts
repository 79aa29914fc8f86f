// Which examples form which batch in an epoch: a pure function of (seed, epoch, options), so a restored
// loader replays exactly the batches it would have produced.
import { Rng } from '../nn/rng.js';

export interface BatchOrderOptions {
  batchSize: number;
  seed: number;
  /** Shuffle each epoch (default order otherwise). */
  shuffle: boolean;
  /**
   * LLaVA group_by_modality_length: batches hold only samples with images or only text-only samples, and
   * samples of similar length (sorted inside megabatches of `megabatchBatches` batches, then batches shuffled).
   */
  groupByLength: boolean;
  megabatchBatches: number;
  /**
   * tf.data's bucket_by_sequence_length: bucket k holds the examples shorter than `lengthBuckets[k]` (and not in
   * an earlier bucket), the last bucket the rest; each batch comes from one bucket, batches are shuffled across
   * buckets. A few long samples then pad only their own batches. Empty or absent: no buckets.
   */
  lengthBuckets?: readonly number[];
  /** Drop incomplete batches (with grouping: the incomplete one of each modality). */
  dropLast: boolean;
}

export interface ExampleShape {
  length: number;
  hasMedia: boolean;
}

/** A 32-bit hash of the seed in the high bits, the epoch exact in the low 21: epochs of one seed never collide. */
function epochRng(seed: number, epoch: number): Rng {
  let h = ((seed >>> 0) ^ Math.floor(seed / 4294967296)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return new Rng(h * 2097152 + (epoch % 2097152));
}

function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function chunk(indices: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < indices.length; start += size) out.push(indices.slice(start, start + size));
  return out;
}

function countBatches(n: number, opts: BatchOrderOptions): number {
  return opts.dropLast ? Math.floor(n / opts.batchSize) : Math.ceil(n / opts.batchSize);
}

/** Batches per epoch (the same every epoch). */
export function batchesPerEpoch(shapes: readonly ExampleShape[], opts: BatchOrderOptions): number {
  if (opts.lengthBuckets?.length)
    return bucketed(
      shapes.map((_, i) => i),
      shapes,
      opts.lengthBuckets,
    ).reduce((n, bucket) => n + countBatches(bucket.length, opts), 0);
  if (!opts.groupByLength) return countBatches(shapes.length, opts);
  const withMedia = shapes.filter((s) => s.hasMedia).length;
  return countBatches(withMedia, opts) + countBatches(shapes.length - withMedia, opts);
}

/** Checks bucket boundaries: positive integers, strictly increasing; `field` names the option in the error. */
export function checkLengthBuckets(boundaries: readonly number[], field: string): void {
  boundaries.forEach((b, k) => {
    if (!Number.isInteger(b) || b < 1 || (k > 0 && b <= (boundaries[k - 1] as number)))
      throw new Error(
        `${field} must be positive integers in increasing order (token lengths where a bucket ends), got [${boundaries.join(', ')}].`,
      );
  });
}

/** `order` split into the length buckets, each keeping the order's sequence. */
function bucketed(
  order: readonly number[],
  shapes: readonly ExampleShape[],
  boundaries: readonly number[],
): number[][] {
  const buckets: number[][] = Array.from({ length: boundaries.length + 1 }, () => []);
  for (const i of order) {
    const k = boundaries.findIndex((b) => shapes[i].length < b);
    buckets[k === -1 ? boundaries.length : k].push(i);
  }
  return buckets;
}

/** The example indices of every batch of `epoch`, in order. */
export function epochBatches(
  shapes: readonly ExampleShape[],
  epoch: number,
  opts: BatchOrderOptions,
): number[][] {
  const rng = epochRng(opts.seed, epoch);
  const order = shapes.map((_, i) => i);
  if (opts.shuffle) shuffleInPlace(order, rng);
  const B = opts.batchSize;
  if (opts.lengthBuckets?.length) {
    const full: number[][] = [];
    const partial: number[][] = [];
    for (const bucket of bucketed(order, shapes, opts.lengthBuckets))
      for (const batch of chunk(bucket, B)) (batch.length === B ? full : partial).push(batch);
    if (opts.shuffle) shuffleInPlace(full, rng);
    return opts.dropLast ? full : [...full, ...partial];
  }
  if (!opts.groupByLength) {
    const batches = chunk(order, B);
    if (opts.dropLast && batches.length > 0 && batches[batches.length - 1].length < B) batches.pop();
    return batches;
  }
  const full: number[][] = [];
  const partial: number[][] = [];
  for (const media of [true, false]) {
    const group = order.filter((i) => shapes[i].hasMedia === media);
    const megabatch = B * opts.megabatchBatches;
    for (let start = 0; start < group.length; start += megabatch) {
      const sorted = group
        .slice(start, start + megabatch)
        .sort((a, b) => shapes[b].length - shapes[a].length);
      for (const batch of chunk(sorted, B)) (batch.length === B ? full : partial).push(batch);
    }
  }
  if (opts.shuffle) shuffleInPlace(full, rng);
  const batches = opts.dropLast ? full : [...full, ...partial];
  // The batch with the longest sample goes first, so running out of memory shows at the first step (as HF does).
  const longestOf = (batch: number[]) => Math.max(...batch.map((i) => shapes[i].length));
  let first = 0;
  batches.forEach((batch, i) => {
    if (longestOf(batch) > longestOf(batches[first])) first = i;
  });
  if (first > 0) [batches[0], batches[first]] = [batches[first], batches[0]];
  return batches;
}
