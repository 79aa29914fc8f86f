// InstructionDataLoader: examples → right-padded MultimodalBatches, shuffled per (seed, epoch), with the
// next batch's media (every kind) decoding while the current batch trains, and an exact state()/restore().
import * as tf from '@tensorflow/tfjs-core';
import type { MultimodalBatch } from '../multimodal/model.js';
import { type LoadInstructionDataOptions, loadInstructionData } from './dataset.js';
import { type Example, IGNORE_INDEX } from './examples.js';
import {
  type BatchOrderOptions,
  batchesPerEpoch,
  checkLengthBuckets,
  type ExampleShape,
  epochBatches,
} from './sampler.js';
import { mediaOf } from './samples.js';
import { countMedia, type DataStats, emptyDataStats } from './stats.js';
import type { BatchSource, BatchSourceState } from './types.js';

/** Decodes one image file into the tensor the vision encoder takes ([3, H, W] for the CLIP/SigLIP processors). */
export type ImageLoader = (path: string) => Promise<tf.Tensor3D>;

/** Decodes one item of a media kind (`image`, `video`, …) into the tensor its modality's encoder takes. */
export type MediaLoader = (kind: string, path: string) => Promise<tf.Tensor>;

export interface InstructionDataLoaderOptions {
  batchSize: number;
  /** Id written at padded positions (attention 0, label -100); any id the embedding table holds. */
  padTokenId: number;
  /** Decodes every media item; give this or loadImage (images only). */
  loadMedia?: MediaLoader;
  /** The images-only shorthand of loadMedia. */
  loadImage?: ImageLoader;
  /** Shuffle seed (default 0); epoch e uses an order derived from (seed, e). */
  seed?: number;
  /** Default true. */
  shuffle?: boolean;
  /** LLaVA group_by_modality_length-style batches (see BatchOrderOptions). Default false. */
  groupByLength?: boolean;
  /** Batches per length-sorted megabatch when grouping (default 50, as HF's length-grouped sampler). */
  megabatchBatches?: number;
  /**
   * Token lengths where a bucket ends (tf.data bucket_by_sequence_length): every batch holds examples of one
   * bucket, so the few long ones (multi-turn, descriptions) pad only their own batches; batches stay shuffled
   * across buckets and each mixes every kind of short sample. Not with groupByLength.
   */
  lengthBuckets?: readonly number[];
  /** Drop incomplete batches. Default false. */
  dropLast?: boolean;
  /** Media key of the images in the batch (the model's modality name). Default 'image'. */
  modality?: string;
  /** Media key per kind where the model's modality name differs from the kind (default: the kind's name). */
  modalities?: Readonly<Record<string, string>>;
  /** What reading the data reported (fromFiles passes it); default: counts over `examples`. */
  stats?: DataStats;
}

/** What fromFiles takes: the data files and how to build examples, then how to batch them. */
export type InstructionDataFileOptions = LoadInstructionDataOptions &
  Omit<InstructionDataLoaderOptions, 'padTokenId' | 'stats'> & { padTokenId?: number };

/** FNV-1a over ids, lengths and supervised counts: restore() refuses a state saved on other data. */
function fingerprint(examples: readonly Example[]): string {
  let h = 0x811c9dc5;
  const mix = (n: number) => {
    h = Math.imul(h ^ (n & 0xffff), 0x01000193);
    h = Math.imul(h ^ (n >>> 16), 0x01000193);
  };
  for (const e of examples) {
    for (let i = 0; i < e.id.length; i++) mix(e.id.charCodeAt(i));
    mix(e.inputIds.length);
    mix(e.supervisedTokens);
    mix(e.images.length);
    // Other kinds only where present, so image-only data keeps the fingerprints of earlier versions.
    for (const [kind, paths] of Object.entries(mediaOf(e))) {
      if (kind === 'image' || paths.length === 0) continue;
      for (let i = 0; i < kind.length; i++) mix(kind.charCodeAt(i));
      mix(paths.length);
    }
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

function statsOf(examples: readonly Example[]): DataStats {
  const stats = emptyDataStats();
  stats.samplesRead = stats.samplesUsed = examples.length;
  for (const e of examples) {
    stats.totalTokens += e.inputIds.length;
    stats.supervisedTokens += e.supervisedTokens;
    countMedia(stats, mediaOf(e));
    if (e.truncated) stats.truncated++;
  }
  return stats;
}

/** Disposes every tensor of a batch (ids, mask, labels, media items, head targets that are tensors). */
export function disposeMultimodalBatch(batch: MultimodalBatch): void {
  const media = Object.values(batch.media ?? {}).flatMap((perSample) => perSample.flat());
  const targets = Object.values(batch.headTargets ?? {})
    .flat()
    .filter((t): t is tf.Tensor => t instanceof tf.Tensor);
  tf.dispose(
    [batch.inputIds, batch.attentionMask, batch.labels, ...media, ...targets].filter((t) => t !== undefined),
  );
}

/** The rows' head targets concatenated per head, sample-major; undefined when no row has any. */
function collateHeadTargets(rows: readonly Example[]): Record<string, unknown[]> | undefined {
  if (!rows.some((e) => e.targets)) return undefined;
  const out: Record<string, unknown[]> = {};
  for (const e of rows)
    for (const [head, list] of Object.entries(e.targets ?? {})) out[head] = [...(out[head] ?? []), ...list];
  return out;
}

/** Per media kind, per sample of the batch: the decoded items. */
type BatchMedia = Record<string, tf.Tensor[][]>;

interface Prefetch {
  epoch: number;
  batchIndex: number;
  media: Promise<BatchMedia>;
}

/** The item loader per kind and the name of the loader option, for error messages. */
interface KindLoader {
  load: (path: string) => Promise<tf.Tensor>;
  option: string;
}

/** Kinds with items in the examples, in order of first appearance (image first when loadImage is used). */
function kindsOf(examples: readonly Example[], options: InstructionDataLoaderOptions): string[] {
  const kinds = new Set<string>(options.loadImage ? ['image'] : []);
  for (const e of examples)
    for (const [kind, paths] of Object.entries(mediaOf(e))) if (paths.length > 0) kinds.add(kind);
  for (const kind of Object.keys(options.modalities ?? {})) kinds.add(kind);
  return [...kinds];
}

function kindLoaders(
  kinds: readonly string[],
  options: InstructionDataLoaderOptions,
): Map<string, KindLoader> {
  const { loadMedia, loadImage } = options;
  if (loadMedia && loadImage)
    throw new Error(
      'InstructionDataLoader: give loadMedia(kind, path) or loadImage(path), not both (loadImage is the images-only shorthand).',
    );
  const loaders = new Map<string, KindLoader>();
  for (const kind of kinds) {
    if (loadMedia) loaders.set(kind, { load: (path) => loadMedia(kind, path), option: `loadMedia(${kind})` });
    else if (loadImage && kind === 'image') loaders.set(kind, { load: loadImage, option: 'loadImage' });
    else
      throw new Error(
        `InstructionDataLoader: the examples hold ${kind} items but no loader decodes them: give loadMedia(kind, path)` +
          (loadImage ? ' (loadImage decodes images only).' : '.'),
      );
  }
  return loaders;
}

export class InstructionDataLoader implements BatchSource {
  readonly length: number;
  readonly stats: DataStats;
  private readonly shapes: ExampleShape[];
  private readonly order: Omit<BatchOrderOptions, 'seed'>;
  private readonly loaders: Map<string, KindLoader>;
  private readonly padTokenId: number;
  /** Batch media key per kind (the model's modality name). */
  private readonly modalityOf: Map<string, string>;
  private readonly dataFingerprint: string;
  private seed: number;
  private epoch = 0;
  private batchIndex = 0;
  private cachedBatches: { epoch: number; batches: number[][] } | null = null;
  private prefetched: Prefetch | null = null;
  private inFlight = false;

  constructor(
    readonly examples: readonly Example[],
    options: InstructionDataLoaderOptions,
  ) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`InstructionDataLoader: batchSize must be a positive integer, got ${batchSize}.`);
    const lengthBuckets = options.lengthBuckets ?? [];
    checkLengthBuckets(lengthBuckets, 'InstructionDataLoader: lengthBuckets');
    if (lengthBuckets.length > 0 && options.groupByLength)
      throw new Error(
        'InstructionDataLoader: give lengthBuckets or groupByLength, not both (both decide which examples share a batch).',
      );
    this.order = {
      batchSize,
      shuffle: options.shuffle ?? true,
      groupByLength: options.groupByLength ?? false,
      megabatchBatches: options.megabatchBatches ?? 50,
      lengthBuckets,
      dropLast: options.dropLast ?? false,
    };
    this.seed = options.seed ?? 0;
    const kinds = kindsOf(examples, options);
    this.loaders = kindLoaders(kinds, options);
    this.padTokenId = options.padTokenId;
    this.modalityOf = new Map(
      kinds.map((kind) => [
        kind,
        options.modalities?.[kind] ?? (kind === 'image' ? (options.modality ?? 'image') : kind),
      ]),
    );
    this.shapes = examples.map((e) => ({
      length: e.inputIds.length,
      hasMedia: Object.values(mediaOf(e)).some((paths) => paths.length > 0),
    }));
    this.length = batchesPerEpoch(this.shapes, { ...this.order, seed: this.seed });
    if (this.length === 0)
      throw new Error(
        `InstructionDataLoader: ${examples.length} example(s) give no batch of ${batchSize}` +
          (this.order.dropLast ? ' with dropLast: lower batchSize or set dropLast: false.' : '.'),
      );
    this.stats = options.stats ?? statsOf(examples);
    this.dataFingerprint = fingerprint(examples);
  }

  /**
   * Reads and builds the data files, then batches them. The pad id defaults to the tokenizer's pad token,
   * else unk (LLaVA v1), else eos.
   */
  static async fromFiles(options: InstructionDataFileOptions): Promise<InstructionDataLoader> {
    const { tokenizer } = options;
    const unk = tokenizer.specialTokens.unkToken;
    const padTokenId =
      options.padTokenId ??
      tokenizer.padTokenId ??
      (unk === null ? undefined : tokenizer.tokenToId(unk)) ??
      tokenizer.eosTokenId ??
      undefined;
    if (padTokenId === undefined)
      throw new Error(
        'The tokenizer has no pad, unk or eos token: pass padTokenId to InstructionDataLoader.fromFiles.',
      );
    const { examples, stats } = await loadInstructionData(options);
    return new InstructionDataLoader(examples, { ...options, padTokenId, stats });
  }

  /**
   * The held-out source for `files` (the recipe's data.val), built with the training loader's options (same
   * tokenizer, template, media tokens, maxLength, skip settings) but in file order: no shuffle, no length
   * grouping, no batch dropped, no record limit, so every held-out example is scored once per pass.
   */
  static validationFromFiles(
    options: InstructionDataFileOptions,
    files: string | readonly string[],
  ): Promise<InstructionDataLoader> {
    return InstructionDataLoader.fromFiles({
      ...options,
      files,
      shuffle: false,
      groupByLength: false,
      lengthBuckets: undefined,
      dropLast: false,
      limit: undefined,
    });
  }

  /** The epoch the next batch belongs to (0-based). */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** One call at a time: await each batch before asking for the next. */
  async next(): Promise<MultimodalBatch | null> {
    if (this.inFlight)
      throw new Error(
        'InstructionDataLoader.next() was called again before the previous call resolved: await it first.',
      );
    this.inFlight = true;
    try {
      return await this.advance();
    } finally {
      this.inFlight = false;
    }
  }

  private async advance(): Promise<MultimodalBatch | null> {
    const batches = this.batchesOf(this.epoch);
    if (this.batchIndex >= batches.length) {
      this.epoch++;
      this.batchIndex = 0;
      this.prefetch();
      return null;
    }
    const indices = batches[this.batchIndex];
    const media = await this.mediaFor(this.epoch, this.batchIndex, indices);
    this.batchIndex++;
    this.prefetch(); // batch i+1 decodes while the caller trains on batch i
    return this.collate(indices, media);
  }

  state(): BatchSourceState {
    return {
      epoch: this.epoch,
      batchIndex: this.batchIndex,
      seed: this.seed,
      examples: this.examples.length,
      batchSize: this.order.batchSize,
      shuffle: this.order.shuffle,
      groupByLength: this.order.groupByLength,
      megabatchBatches: this.order.megabatchBatches,
      // Only where set, so states saved before buckets existed still restore.
      ...(this.order.lengthBuckets?.length ? { lengthBuckets: this.order.lengthBuckets.join(',') } : {}),
      dropLast: this.order.dropLast,
      fingerprint: this.dataFingerprint,
    };
  }

  /** Continues from `state` (its seed included); refuses a state saved with other data or batching options. */
  restore(state: BatchSourceState): void {
    const mine = this.state();
    for (const key of [
      'examples',
      'batchSize',
      'shuffle',
      'groupByLength',
      'megabatchBatches',
      'lengthBuckets',
      'dropLast',
      'fingerprint',
    ]) {
      if ((state[key] ?? null) !== (mine[key] ?? null))
        throw new Error(
          `InstructionDataLoader.restore: the state has ${key} = ${JSON.stringify(state[key])} but this loader has ` +
            `${JSON.stringify(mine[key])}: build the loader from the same data and options as the run that saved it.`,
        );
    }
    const { epoch, batchIndex, seed } = state;
    if (
      !Number.isSafeInteger(epoch) ||
      !Number.isSafeInteger(batchIndex) ||
      !Number.isSafeInteger(seed) ||
      (epoch as number) < 0 ||
      (batchIndex as number) < 0 ||
      (batchIndex as number) > this.length
    )
      throw new Error(
        `InstructionDataLoader.restore: epoch/batchIndex/seed must be integers with 0 <= batchIndex <= ${this.length}, got ${JSON.stringify({ epoch, batchIndex, seed })}.`,
      );
    this.dropPrefetch();
    this.cachedBatches = null;
    this.seed = seed as number;
    this.epoch = epoch as number;
    this.batchIndex = batchIndex as number;
  }

  /** Releases the media decoded ahead of time. */
  dispose(): void {
    this.dropPrefetch();
  }

  private batchesOf(epoch: number): number[][] {
    if (this.cachedBatches?.epoch !== epoch)
      this.cachedBatches = {
        epoch,
        batches: epochBatches(this.shapes, epoch, { ...this.order, seed: this.seed }),
      };
    return this.cachedBatches.batches;
  }

  private prefetch(): void {
    const batches = this.batchesOf(this.epoch);
    if (this.batchIndex >= batches.length) return;
    const media = this.loadBatchMedia(batches[this.batchIndex]);
    media.catch(() => {}); // a failure is reported when next() awaits it, not as an unhandled rejection
    this.prefetched = { epoch: this.epoch, batchIndex: this.batchIndex, media };
  }

  private mediaFor(epoch: number, batchIndex: number, indices: number[]): Promise<BatchMedia> {
    const ready = this.prefetched;
    if (ready && ready.epoch === epoch && ready.batchIndex === batchIndex) {
      this.prefetched = null;
      return ready.media;
    }
    this.dropPrefetch();
    return this.loadBatchMedia(indices);
  }

  private dropPrefetch(): void {
    const stale = this.prefetched;
    this.prefetched = null;
    stale?.media.then(
      (media) => tf.dispose(Object.values(media).flat(2)),
      () => {},
    );
  }

  /** Every item of the batch, decoded together; on a failure the decoded ones are released. */
  private async loadBatchMedia(indices: number[]): Promise<BatchMedia> {
    const items = indices.flatMap((i, sample) =>
      Object.entries(mediaOf(this.examples[i])).flatMap(([kind, paths]) =>
        paths.map((path) => ({ kind, path, sample })),
      ),
    );
    const settled = await Promise.allSettled(
      items.map(({ kind, path }) => (this.loaders.get(kind) as KindLoader).load(path)),
    );
    const failed = settled.findIndex((r) => r.status === 'rejected');
    if (failed !== -1) {
      tf.dispose(settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
      const reason = (settled[failed] as PromiseRejectedResult).reason as Error;
      const { kind, path } = items[failed];
      throw new Error(
        `${(this.loaders.get(kind) as KindLoader).option} failed for ${path}: ${reason?.message ?? String(reason)}`,
        { cause: reason },
      );
    }
    const media: BatchMedia = Object.fromEntries(
      [...this.loaders.keys()].map((kind) => [kind, indices.map((): tf.Tensor[] => [])]),
    );
    settled.forEach((r, k) => {
      media[items[k].kind][items[k].sample].push((r as PromiseFulfilledResult<tf.Tensor>).value);
    });
    return media;
  }

  /** Right padding: pad id, attention 0, label -100 after each sequence. */
  private collate(indices: number[], media: BatchMedia): MultimodalBatch {
    const rows = indices.map((i) => this.examples[i]);
    const B = rows.length;
    const T = Math.max(...rows.map((e) => e.inputIds.length));
    const ids = new Int32Array(B * T).fill(this.padTokenId);
    const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
    const mask = new Int32Array(B * T);
    rows.forEach((e, b) => {
      ids.set(e.inputIds, b * T);
      labels.set(e.labels, b * T);
      mask.fill(1, b * T, b * T + e.inputIds.length);
    });
    const headTargets = collateHeadTargets(rows);
    return {
      inputIds: tf.tensor2d(ids, [B, T], 'int32'),
      attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
      labels: tf.tensor2d(labels, [B, T], 'int32'),
      media: Object.fromEntries(
        Object.entries(media).map(([kind, items]) => [this.modalityOf.get(kind), items]),
      ),
      ...(headTargets ? { headTargets } : {}),
    };
  }
}
