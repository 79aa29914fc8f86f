// Contract between the data pipeline (data/) and the trainer (train/): the trainer pulls batches and
// records the source's position in checkpoints so a resumed run sees exactly the batches it would have.
import type { MultimodalBatch } from '../multimodal/model.js';

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
