// The splice: placeholder tokens in the text are overwritten, in order, by media slots (HF masked_scatter).
// Built as one gather over a [text rows; slot rows] table so gradients reach the adapter output on every backend.
import * as tf from '@tensorflow/tfjs-core';
import { embedding } from '../ops/embedding.js';
import type { SplicedMedia } from './types.js';

/**
 * Processor side (LlavaProcessor): replaces the i-th occurrence of `tokenId` by `countPerItem[i]` copies
 * (or `countPerItem` copies each when it is a number).
 */
export function expandPlaceholders(
  ids: readonly number[],
  tokenId: number,
  countPerItem: number | readonly number[],
): number[] {
  const occurrences = ids.reduce((n, id) => n + (id === tokenId ? 1 : 0), 0);
  if (typeof countPerItem !== 'number' && countPerItem.length !== occurrences) {
    throw new Error(
      `expandPlaceholders: the ids hold ${occurrences} placeholder token(s) ${tokenId} but ${countPerItem.length} ` +
        'counts were given: pass one count per media item, in prompt order',
    );
  }
  const out: number[] = [];
  let item = 0;
  for (const id of ids) {
    if (id !== tokenId) {
      out.push(id);
      continue;
    }
    const n = typeof countPerItem === 'number' ? countPerItem : countPerItem[item];
    for (let k = 0; k < n; k++) out.push(tokenId);
    item++;
  }
  return out;
}

/** One modality's slots for a batch: rows sample-major, each sample's items in order. */
export interface ModalitySlots {
  name: string;
  placeholderTokenId: number;
  /** [totalSlots, hidden] adapter outputs of every item of the batch. */
  slots: tf.Tensor2D;
  /** Slots each sample brings (sum of its items' slot counts). */
  slotsPerSample: readonly number[];
}

/** Placeholder positions per modality counted on host ids [B][T]. */
export function countPlaceholders(ids: Int32Array, batch: number, tokenId: number): number[] {
  const T = ids.length / batch;
  const counts = new Array<number>(batch).fill(0);
  for (let b = 0; b < batch; b++) for (let t = 0; t < T; t++) if (ids[b * T + t] === tokenId) counts[b]++;
  return counts;
}

/** Throws, naming the sample and modality, when placeholder counts differ from the slots brought. */
export function checkSlotCounts(
  ids: Int32Array,
  batch: number,
  media: readonly Omit<ModalitySlots, 'slots'>[],
): void {
  for (const m of media) {
    const placeholders = countPlaceholders(ids, batch, m.placeholderTokenId);
    for (let b = 0; b < batch; b++) {
      if (placeholders[b] !== m.slotsPerSample[b]) {
        throw new Error(
          `Sample ${b}, modality "${m.name}": expected ${placeholders[b]} slots (placeholder token ${m.placeholderTokenId} ` +
            `in the ids), got ${m.slotsPerSample[b]} features from its media. Expand each placeholder into its item's ` +
            'slot count (expandPlaceholders) and pass exactly the media the prompt refers to.',
        );
      }
    }
  }
}

/**
 * textEmbeds [B, T, H] with every placeholder position of each modality replaced by that modality's next
 * slot row (first item first). Returns the result and, per modality, where each slot landed.
 */
export function spliceSlots(
  textEmbeds: tf.Tensor3D,
  ids: Int32Array,
  media: readonly ModalitySlots[],
): { embeds: tf.Tensor3D; placed: Map<string, SplicedMedia> } {
  const [B, T, H] = textEmbeds.shape;
  checkSlotCounts(ids, B, media);
  for (const m of media) {
    if (m.slots.shape[1] !== H) {
      throw new Error(
        `Modality "${m.name}": slots are ${m.slots.shape[1]} wide but the LLM hidden size is ${H}`,
      );
    }
  }
  // Row index into the table [text rows (B·T); slots of modality 0; slots of modality 1; …].
  const rows = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) rows[i] = i;
  const placed = new Map<string, SplicedMedia>();
  let base = B * T;
  for (const m of media) {
    const n = m.slots.shape[0];
    const sample = new Int32Array(n);
    const position = new Int32Array(n);
    let k = 0;
    for (let i = 0; i < B * T; i++) {
      if (ids[i] !== m.placeholderTokenId) continue;
      rows[i] = base + k;
      sample[k] = Math.floor(i / T);
      position[k] = i % T;
      k++;
    }
    placed.set(m.name, { slots: m.slots, sample, position });
    base += n;
  }
  if (media.length === 0) return { embeds: tf.clone(textEmbeds), placed };
  const embeds = tf.tidy(() => {
    const table = tf.concat([tf.reshape(textEmbeds, [B * T, H]), ...media.map((m) => m.slots)], 0);
    // the op layer's lookup: a row copy forward and a scatter-add backward on wasm/cpu
    return embedding(table as tf.Tensor2D, tf.tensor2d(rows, [B, T], 'int32')) as tf.Tensor3D;
  });
  return { embeds, placed };
}
