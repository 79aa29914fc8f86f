// Contract between the data pipeline (data/) and the trainer (train/): the trainer pulls batches and
// records the source's position in checkpoints so a resumed run sees exactly the batches it would have.
import type { MultimodalBatch } from '../multimodal/model.js';
import type { Sample } from './samples.js';

/** Per head name: one training target per occurrence of the head's trigger token, in order (batch.headTargets). */
export type HeadTargets = Readonly<Record<string, readonly unknown[]>>;

/**
 * How a data file carries targets for output heads (masks for a [SEG] head, …): `read` takes each raw record
 * (the JSON value as in the file) and its parsed sample; `triggers` names each head's trigger token id, so
 * every example is checked to hold one trigger per target. Truncation drops the targets of cut triggers.
 */
export interface HeadTargetsReader {
  read(record: unknown, sample: Sample): HeadTargets | undefined;
  triggers: Readonly<Record<string, number>>;
}

/** JSON-serialisable position of a batch source (epoch, next batch index, shuffle seed …). */
export type BatchSourceState = Readonly<Record<string, number | string | boolean | null>>;

export interface BatchSource {
  /** Batches per epoch. */
  readonly length: number;
  /** The next batch of the current epoch, or null when the epoch is over (the next call starts a new epoch).
   * The caller owns and disposes the batch tensors. */
  next(): Promise<MultimodalBatch | null>;
  /** Where the next call to next() would continue from. */
  state(): BatchSourceState;
  /** Continue from a state returned by state() (on a source built from the same data and options). */
  restore(state: BatchSourceState): void;
}
