// What LLM-internal connectors read of the spliced media (SplicedMedia: slot rows with sample and position):
// per-sample key tables for cross-attention, which tokens see which item, which positions are media.
import { type DecoderBlockContext, type SplicedMedia, tf } from '@vistune/core';

/** One modality's media of the call, or a clear error naming the modality the hook was built for. */
export function mediaOf(ctx: DecoderBlockContext, modality: string): SplicedMedia | undefined {
  const media = ctx.media.get(modality);
  return media && media.slots.shape[0] > 0 ? media : undefined;
}

export interface MediaKeys {
  /** [B, S, width] each sample's slot rows (zero-padded to the longest sample). */
  keys: tf.Tensor3D;
  /** [B, T, S] 1 = the query token at t may attend slot s (the item placed last at or before it). */
  visible: tf.Tensor3D;
  /** [B, T, 1] 1 = the token sees some item (0 before a sample's first item: its cross-attention is zero). */
  seesMedia: tf.Tensor3D;
}

/**
 * Keys and Flamingo's "only the immediately preceding item" mask for the call's T tokens at positions
 * pastLength + t. `slotsPerItem` splits a sample's slot run into items.
 */
export function mediaKeys(
  media: SplicedMedia,
  batch: number,
  tokens: number,
  pastLength: number,
  slotsPerItem: number,
  onlyPrecedingItem = true,
): MediaKeys {
  const { rows: perSample, width: S } = slotRowsPerSample(media, batch);
  const visible = new Float32Array(batch * tokens * S);
  const sees = new Float32Array(batch * tokens);
  for (let b = 0; b < batch; b++) {
    const rows = perSample[b] as number[];
    for (let t = 0; t < tokens; t++) {
      const position = pastLength + t;
      // The last item whose first slot sits at or before this position.
      let item = -1;
      for (let s = 0; s < rows.length; s += slotsPerItem)
        if ((media.position[rows[s] as number] as number) <= position) item = s / slotsPerItem;
      if (item < 0) continue;
      sees[b * tokens + t] = 1;
      const from = onlyPrecedingItem ? item * slotsPerItem : 0;
      const to = (item + 1) * slotsPerItem;
      for (let s = from; s < Math.min(to, rows.length); s++) visible[(b * tokens + t) * S + s] = 1;
    }
  }
  return tf.tidy(() => ({
    keys: sampleSlots(media, batch),
    visible: tf.tensor3d(visible, [batch, tokens, S]),
    seesMedia: tf.tensor3d(sees, [batch, tokens, 1]),
  }));
}

/** Slot row indices of each sample, and the longest sample's count (at least 1). */
function slotRowsPerSample(media: SplicedMedia, batch: number): { rows: number[][]; width: number } {
  const rows: number[][] = Array.from({ length: batch }, () => []);
  media.sample.forEach((b, row) => {
    rows[b]?.push(row);
  });
  return { rows, width: Math.max(1, ...rows.map((r) => r.length)) };
}

/** [B, S, width] each sample's slot rows in placement order, zero-padded to the longest sample's S. */
export function sampleSlots(media: SplicedMedia, batch: number): tf.Tensor3D {
  const { rows, width: S } = slotRowsPerSample(media, batch);
  const gatherRows = new Int32Array(batch * S);
  const valid = new Float32Array(batch * S);
  rows.forEach((list, b) => {
    list.forEach((row, s) => {
      gatherRows[b * S + s] = row;
      valid[b * S + s] = 1;
    });
  });
  return tf.tidy(() => {
    const width = media.slots.shape[1];
    const gathered = tf.gather(media.slots, tf.tensor1d(gatherRows, 'int32'));
    return tf.mul(tf.reshape(gathered, [batch, S, width]), tf.tensor3d(valid, [batch, S, 1])) as tf.Tensor3D;
  });
}

/** `mask` [B, keys] (ones when absent) with 0 at the modality's slot positions: the text never attends to them. */
export function hideSlotPositions(
  media: SplicedMedia | undefined,
  mask: tf.Tensor2D | undefined,
  batch: number,
  keys: number,
): tf.Tensor2D {
  const keep = new Float32Array(batch * keys).fill(1);
  if (media) {
    media.sample.forEach((b, row) => {
      const p = media.position[row] as number;
      if (p < keys) keep[b * keys + p] = 0;
    });
  }
  return tf.tidy(() => {
    const hidden = tf.tensor2d(keep, [batch, keys]);
    return (mask ? tf.mul(tf.cast(mask, 'float32'), hidden) : hidden) as tf.Tensor2D;
  });
}

/** [B, T, 1] 1 where the call's token t of sample b is a media slot (CogVLM's image positions). */
export function mediaPositions(
  media: SplicedMedia,
  batch: number,
  tokens: number,
  pastLength: number,
): tf.Tensor3D {
  const mask = new Float32Array(batch * tokens);
  media.sample.forEach((b, row) => {
    const t = (media.position[row] as number) - pastLength;
    if (b < batch && t >= 0 && t < tokens) mask[b * tokens + t] = 1;
  });
  return tf.tensor3d(mask, [batch, tokens, 1]);
}

/** [B] 1 where sample b has any item of the modality (LaVIN's modality token). */
export function samplesWithMedia(media: SplicedMedia | undefined, batch: number): Float32Array {
  const has = new Float32Array(batch);
  if (media) for (const b of media.sample) if (b < batch) has[b] = 1;
  return has;
}
