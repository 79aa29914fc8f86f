import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { expandPlaceholders, spliceSlots } from './splice.js';

const IMG = 900;
const VID = 901;

/** Naive masked_scatter: walk positions, take the next slot row of the placeholder's modality. */
function naiveSplice(text: number[][][], ids: number[][], slots: Record<number, number[][]>): number[][][] {
  const next: Record<number, number> = {};
  return ids.map((row, b) =>
    row.map((id, t) => {
      if (!(id in slots)) return text[b][t];
      const k = next[id] ?? 0;
      next[id] = k + 1;
      return slots[id][k];
    }),
  );
}

function randomArray(shape: number[], seed: number): number[] {
  const n = shape.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 3);
}

describe('expandPlaceholders', () => {
  it('repeats each occurrence by its own count, other ids unchanged', () => {
    expect(expandPlaceholders([1, IMG, 5, IMG, 6], IMG, [2, 3])).toEqual([1, IMG, IMG, 5, IMG, IMG, IMG, 6]);
    expect(expandPlaceholders([IMG, 7], IMG, 4)).toEqual([IMG, IMG, IMG, IMG, 7]);
    expect(expandPlaceholders([1, 2], IMG, 4)).toEqual([1, 2]);
  });
  it('rejects a count list that does not match the occurrences', () => {
    expect(() => expandPlaceholders([IMG, 1, IMG], IMG, [3])).toThrow(
      /2 placeholder token\(s\) 900 but 1 counts/,
    );
  });
});

describe('spliceSlots', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Sample 0: two image runs and a video run; sample 1: one image run split by text is 2 items of 2.
  const ids = [
    [1, IMG, IMG, 5, VID, VID, VID, 6, IMG, IMG, 7],
    [1, 2, IMG, IMG, 3, IMG, IMG, 4, 8, 9, 10],
  ];
  const [B, T, H] = [2, 11, 3];

  it('fills every placeholder in order, per modality, like masked_scatter', () => {
    const text = tf.tensor3d(randomArray([B, T, H], 1), [B, T, H]);
    const img = tf.tensor2d(randomArray([8, H], 2), [8, H]);
    const vid = tf.tensor2d(randomArray([3, H], 3), [3, H]);
    const { embeds, placed } = spliceSlots(text, Int32Array.from(ids.flat()), [
      { name: 'image', placeholderTokenId: IMG, slots: img, slotsPerSample: [4, 4] },
      { name: 'video', placeholderTokenId: VID, slots: vid, slotsPerSample: [3, 0] },
    ]);
    const expected = naiveSplice(text.arraySync(), ids, { [IMG]: img.arraySync(), [VID]: vid.arraySync() });
    const got = embeds.arraySync();
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++) expect(got[b][t][h]).toBeCloseTo(expected[b][t][h], 6);
    expect([...placed.get('image')!.sample]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect([...placed.get('image')!.position]).toEqual([1, 2, 8, 9, 2, 3, 5, 6]);
    expect([...placed.get('video')!.position]).toEqual([4, 5, 6]);
    tf.dispose([text, img, vid, embeds]);
  });

  it('names the sample and modality when counts disagree', () => {
    const text = tf.zeros([B, T, H]) as tf.Tensor3D;
    const img = tf.zeros([7, H]) as tf.Tensor2D;
    expect(() =>
      spliceSlots(text, Int32Array.from(ids.flat()), [
        { name: 'image', placeholderTokenId: IMG, slots: img, slotsPerSample: [4, 3] },
      ]),
    ).toThrow(/Sample 1, modality "image": expected 4 slots .* got 3 features/);
    tf.dispose([text, img]);
  });

  it('passes gradients to the slots and the text rows on wasm', () => {
    const text = tf.tensor3d(randomArray([B, T, H], 4), [B, T, H]);
    const img = tf.tensor2d(randomArray([8, H], 5), [8, H]);
    const weights = tf.tensor3d(randomArray([B, T, H], 6), [B, T, H]);
    const loss = (t: tf.Tensor, s: tf.Tensor) =>
      tf.sum(
        tf.mul(
          spliceSlots(
            t as tf.Tensor3D,
            Int32Array.from(ids.flatMap((r) => r.map((id) => (id === VID ? 0 : id)))),
            [{ name: 'image', placeholderTokenId: IMG, slots: s as tf.Tensor2D, slotsPerSample: [4, 4] }],
          ).embeds,
          weights,
        ),
      ) as tf.Scalar;
    const [gText, gSlots] = tf.grads(loss)([text, img]);
    const w = weights.arraySync();
    const gs = gSlots.arraySync() as number[][];
    const gt = gText.arraySync() as number[][][];
    // d loss / d slot k = weight at the position slot k landed on; text rows under a placeholder get 0.
    const positions: [number, number][] = [];
    ids.forEach((row, b) => {
      row.forEach((id, t) => {
        if (id === IMG) positions.push([b, t]);
      });
    });
    positions.forEach(([b, t], k) => {
      for (let h = 0; h < H; h++) expect(gs[k][h]).toBeCloseTo(w[b][t][h], 6);
    });
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) expect(gt[b][t][h]).toBeCloseTo(ids[b][t] === IMG ? 0 : w[b][t][h], 6);
      }
    }
    tf.dispose([text, img, weights, gText, gSlots]);
  });
});
