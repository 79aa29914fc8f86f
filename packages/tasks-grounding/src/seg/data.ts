// Segmentation samples → MultimodalBatches whose `headTargets` carry one mask per [SEG] (what core's
// InstructionDataLoader cannot pass yet). Records are LLaVA records whose `truth` entries hold `masks`
// (COCO RLE, one per [SEG] of that assistant turn, in order), as the demo world writes them.
import {
  type BatchSource,
  type BatchSourceState,
  type ConversationTemplate,
  createExampleBuilder,
  type Example,
  epochBatches,
  IGNORE_INDEX,
  type ImageTokenSpec,
  type MultimodalBatch,
  parseRecord,
  type Tokenizer,
  tf,
} from '@vistune/core';
import { type CocoRle, rleToMask } from '../refcoco/index.js';
import type { SegMaskTarget } from './head.js';
import type { FrameTransform } from './resample.js';

/** A LLaVA record with per-turn mask truth. */
export interface SegmentationRecord {
  id: string;
  image: string;
  conversations: readonly { from: string; value: string }[];
  truth?: readonly { masks?: readonly CocoRle[] }[];
}

export interface SegmentationExample {
  example: Example;
  /** The sample's image path (absolute or resolved against imageFolder). */
  image: string;
  /** One mask per [SEG] of the example's ids, in order (original frame, no transform yet). */
  masks: Omit<SegMaskTarget, 'transform'>[];
  /** Index in inputIds where the first assistant answer starts (the generation prompt is ids before it). */
  promptLength: number;
}

export interface BuildSegmentationOptions {
  tokenizer: Tokenizer;
  template: ConversationTemplate;
  imageToken: ImageTokenSpec;
  segTokenId: number;
  maxLength: number;
  imageFolder: string;
  /** Names the data in skip messages. */
  source?: string;
}

export interface BuiltSegmentationData {
  examples: SegmentationExample[];
  /** Why records were left out, one line each. */
  skipped: string[];
}

/** Records → examples with their masks; a record whose [SEG] count differs from its masks is skipped. */
export function buildSegmentationExamples(
  records: readonly SegmentationRecord[],
  opts: BuildSegmentationOptions,
): BuiltSegmentationData {
  const build = createExampleBuilder({
    tokenizer: opts.tokenizer,
    template: opts.template,
    imageToken: opts.imageToken,
    maxLength: opts.maxLength,
  });
  const file = opts.source ?? 'segmentation data';
  const examples: SegmentationExample[] = [];
  const skipped: string[] = [];
  for (const [index, record] of records.entries()) {
    const problem = (message: string) => skipped.push(message);
    const parsed = parseRecord(record, { file, index }, { imageFolder: opts.imageFolder });
    if (!parsed.ok) {
      problem(parsed.message);
      continue;
    }
    const built = build(parsed.sample);
    if (!built.ok) {
      problem(built.message);
      continue;
    }
    const { example } = built;
    if (example.images.length !== 1) {
      problem(`${file}[${index}]: ${example.images.length} images; the [SEG] head reads one per sample`);
      continue;
    }
    const masks = (record.truth ?? []).flatMap((t) => t.masks ?? []);
    const segs = example.inputIds.reduce((n, id) => n + (id === opts.segTokenId ? 1 : 0), 0);
    if (segs !== masks.length) {
      problem(
        `${file}[${index}] (${record.id}): ${segs} [SEG] token(s) in the ids but ${masks.length} mask(s)${example.truncated ? ' (truncated: raise maxLength)' : ''}`,
      );
      continue;
    }
    const promptLength = example.labels.findIndex((l) => l !== IGNORE_INDEX);
    examples.push({
      example,
      image: example.images[0] as string,
      masks: masks.map((m) => ({ mask: rleToMask(m), width: m.size[1], height: m.size[0] })),
      promptLength: promptLength < 0 ? example.inputIds.length : promptLength,
    });
  }
  return { examples, skipped };
}

/** A processed image: pixel values [3, H, W] and where original points land in them. */
export interface LoadedImage {
  pixels: tf.Tensor3D;
  transform?: FrameTransform;
}
export type SegmentationImageLoader = (path: string) => Promise<LoadedImage>;

export interface SegmentationBatchSourceOptions {
  batchSize: number;
  padTokenId: number;
  loadImage: SegmentationImageLoader;
  /** Key of the head's targets in batch.headTargets (the head's name). */
  headName: string;
  /** Media key (the model's image modality). Default 'image'. */
  modality?: string;
  seed?: number;
  /** Default true. */
  shuffle?: boolean;
  /** Default false. */
  dropLast?: boolean;
}

/**
 * Right-padded batches in a seeded per-epoch order (core's epochBatches), with `headTargets[headName]` =
 * the masks of every [SEG] in the batch, sample-major, each with its image's transform.
 */
export class SegmentationBatchSource implements BatchSource {
  readonly length: number;
  private epoch = 0;
  private batchIndex = 0;
  private cached: { epoch: number; batches: number[][] } | null = null;
  private readonly order: {
    batchSize: number;
    seed: number;
    shuffle: boolean;
    groupByLength: boolean;
    megabatchBatches: number;
    dropLast: boolean;
  };

  constructor(
    readonly examples: readonly SegmentationExample[],
    readonly options: SegmentationBatchSourceOptions,
  ) {
    if (examples.length === 0)
      throw new Error('SegmentationBatchSource: no examples (check the skipped list)');
    this.order = {
      batchSize: options.batchSize,
      seed: options.seed ?? 0,
      shuffle: options.shuffle ?? true,
      groupByLength: false,
      megabatchBatches: 50,
      dropLast: options.dropLast ?? false,
    };
    this.length = this.batchesOf(0).length;
  }

  async next(): Promise<MultimodalBatch | null> {
    const batches = this.batchesOf(this.epoch);
    if (this.batchIndex >= batches.length) {
      this.epoch++;
      this.batchIndex = 0;
      return null;
    }
    const indices = batches[this.batchIndex++] as number[];
    return this.collate(indices.map((i) => this.examples[i] as SegmentationExample));
  }

  /** A batch of the given examples, in order (evaluation uses it directly). */
  async collate(rows: readonly SegmentationExample[]): Promise<MultimodalBatch> {
    const images = await Promise.all(rows.map((r) => this.options.loadImage(r.image)));
    const B = rows.length;
    const T = Math.max(...rows.map((r) => r.example.inputIds.length));
    const ids = new Int32Array(B * T).fill(this.options.padTokenId);
    const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
    const mask = new Int32Array(B * T);
    rows.forEach(({ example }, b) => {
      ids.set(example.inputIds, b * T);
      labels.set(example.labels, b * T);
      mask.fill(1, b * T, b * T + example.inputIds.length);
    });
    const targets: SegMaskTarget[] = rows.flatMap((r, b) =>
      r.masks.map((m) => ({ ...m, transform: images[b]?.transform })),
    );
    return {
      inputIds: tf.tensor2d(ids, [B, T], 'int32'),
      attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
      labels: tf.tensor2d(labels, [B, T], 'int32'),
      media: { [this.options.modality ?? 'image']: images.map((img) => [img.pixels]) },
      headTargets: { [this.options.headName]: targets },
    };
  }

  state(): BatchSourceState {
    return {
      epoch: this.epoch,
      batchIndex: this.batchIndex,
      seed: this.order.seed,
      examples: this.examples.length,
    };
  }

  restore(state: BatchSourceState): void {
    if (state.examples !== this.examples.length || state.seed !== this.order.seed)
      throw new Error(
        `SegmentationBatchSource.restore: the state is for ${state.examples} examples with seed ${state.seed}, this source has ${this.examples.length} with seed ${this.order.seed}: build it from the same data`,
      );
    this.epoch = Number(state.epoch);
    this.batchIndex = Number(state.batchIndex);
  }

  private batchesOf(epoch: number): number[][] {
    if (this.cached?.epoch !== epoch) {
      const shapes = this.examples.map((e) => ({ length: e.example.inputIds.length, hasMedia: true }));
      this.cached = { epoch, batches: epochBatches(shapes, epoch, this.order) };
    }
    return this.cached.batches;
  }
}
