import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { MultimodalModel } from '../multimodal/model.js';
import type {
  Adapter,
  EncodeOptions,
  EncoderOutput,
  FeatureLayout,
  ModalityEncoder,
} from '../multimodal/types.js';
import { Initializer } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { type Example, IGNORE_INDEX } from './examples.js';
import { disposeMultimodalBatch, type ImageLoader, InstructionDataLoader } from './loader.js';

const PAD = 0;
const IMG = 47;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** An example whose ids are `ids`, supervised from position `from` on. */
function example(id: string, ids: number[], from: number, images: string[] = []): Example {
  return {
    id,
    location: { file: 'mem', index: 0 },
    inputIds: Int32Array.from(ids),
    labels: Int32Array.from(ids.map((t, i) => (i >= from && t !== IMG ? t : IGNORE_INDEX))),
    images,
    supervisedTokens: ids.length - from,
    truncated: false,
    retokenizedBoundaries: 0,
    endsWithSpecialToken: true,
  };
}

/** Every image is [3, 2, 4] filled with the number in its file name (img7.png → 7). */
const pixelValue = (path: string) => Number(/(\d+)/.exec(path)![1]);
const fillLoader: ImageLoader = async (path) => tf.fill([3, 2, 4], pixelValue(path)) as tf.Tensor3D;

/** n examples of varied lengths, example i holding the id 1000 + i; every third is text-only. */
function dataset(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    const length = 4 + ((i * 7) % 11);
    const ids = Array.from({ length }, (_, t) => (t === 0 ? 1000 + i : 1 + ((i + t) % 40)));
    return i % 3 === 2
      ? example(`t${i}`, ids, 2)
      : example(`m${i}`, [1, IMG, IMG, ...ids], 4, [`img${i}.png`]);
  });
}

async function epochIds(loader: InstructionDataLoader): Promise<string[][]> {
  const out: string[][] = [];
  for (let batch = await loader.next(); batch !== null; batch = await loader.next()) {
    const ids = batch.inputIds.arraySync();
    out.push(ids.map((row) => loader.examples[row.find((t) => t >= 1000)! - 1000].id));
    disposeMultimodalBatch(batch);
  }
  return out;
}

describe('InstructionDataLoader', () => {
  it('right-pads ids with the pad id, labels with -100, attention with 0; media per sample in order', async () => {
    const a = example('a', [1, IMG, IMG, 5, 6, 7], 4, ['img3.png']);
    const b = example('b', [1, 8, 9], 2);
    const loader = new InstructionDataLoader([a, b], {
      batchSize: 2,
      padTokenId: PAD,
      loadImage: fillLoader,
      shuffle: false,
    });
    expect(loader.length).toBe(1);
    const batch = (await loader.next())!;
    expect(batch.inputIds.dtype).toBe('int32');
    expect(batch.inputIds.arraySync()).toEqual([
      [1, IMG, IMG, 5, 6, 7],
      [1, 8, 9, PAD, PAD, PAD],
    ]);
    expect(batch.labels!.arraySync()).toEqual([
      [-100, -100, -100, -100, 6, 7],
      [-100, -100, 9, -100, -100, -100],
    ]);
    expect(batch.attentionMask!.arraySync()).toEqual([
      [1, 1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0, 0],
    ]);
    const images = batch.media!.image;
    expect(images.map((list) => list.length)).toEqual([1, 0]);
    expect(images[0][0].shape).toEqual([3, 2, 4]);
    expect(images[0][0].dataSync()[0]).toBe(3);
    disposeMultimodalBatch(batch);
    expect(await loader.next()).toBeNull();
    loader.dispose();
  });

  it('shuffles by (seed, epoch): each epoch is a permutation, reproducible, different across epochs and seeds', async () => {
    const data = dataset(13);
    const make = (seed: number, opts = {}) =>
      new InstructionDataLoader(data, {
        batchSize: 4,
        padTokenId: PAD,
        loadImage: fillLoader,
        seed,
        ...opts,
      });
    const first = make(1);
    const e0 = await epochIds(first);
    const e1 = await epochIds(first);
    expect(e0.map((b) => b.length)).toEqual([4, 4, 4, 1]);
    expect(e0.flat().sort()).toEqual(data.map((e) => e.id).sort());
    expect(e1.flat().sort()).toEqual(data.map((e) => e.id).sort());
    expect(e1).not.toEqual(e0);
    expect(await epochIds(make(1))).toEqual(e0);
    expect(await epochIds(make(2))).not.toEqual(e0);
    const sequential = await epochIds(make(1, { shuffle: false }));
    expect(sequential.flat()).toEqual(data.map((e) => e.id));
    const dropped = make(1, { dropLast: true });
    expect(dropped.length).toBe(3);
    expect((await epochIds(dropped)).map((b) => b.length)).toEqual([4, 4, 4]);
  });

  it('groupByLength: modality-pure batches of similar length, less padding, the longest batch first', async () => {
    const data = dataset(60);
    const padding = async (groupByLength: boolean) => {
      const loader = new InstructionDataLoader(data, {
        batchSize: 4,
        padTokenId: PAD,
        loadImage: fillLoader,
        seed: 5,
        groupByLength,
        megabatchBatches: 5,
      });
      const batches = await epochIds(loader);
      const byId = new Map(data.map((e) => [e.id, e]));
      const lengths = batches.map((b) => b.map((id) => byId.get(id)!.inputIds.length));
      return {
        batches,
        lengths,
        pads: lengths.reduce((n, l) => n + Math.max(...l) * l.length - l.reduce((s, x) => s + x, 0), 0),
      };
    };
    const grouped = await padding(true);
    const random = await padding(false);
    expect(grouped.batches.flat().sort()).toEqual(data.map((e) => e.id).sort());
    for (const batch of grouped.batches) expect(new Set(batch.map((id) => id[0])).size).toBe(1); // m… or t…
    expect(grouped.pads).toBeLessThan(random.pads / 2);
    const longest = Math.max(...data.map((e) => e.inputIds.length));
    expect(Math.max(...grouped.lengths[0])).toBe(longest);
    // 40 with images, 20 text-only: 10 + 5 batches of 4.
    expect(grouped.batches).toHaveLength(15);
  });

  it('lengthBuckets: each batch from one bucket, shuffled across buckets, every example once, restorable', async () => {
    const data = dataset(60); // lengths 4–14 text-only, 7–17 with images
    const byId = new Map(data.map((e) => [e.id, e]));
    const make = (opts = {}) =>
      new InstructionDataLoader(data, {
        batchSize: 4,
        padTokenId: PAD,
        loadImage: fillLoader,
        seed: 5,
        lengthBuckets: [9, 13],
        ...opts,
      });
    const bucketOf = (id: string) => {
      const length = byId.get(id)!.inputIds.length;
      return length < 9 ? 0 : length < 13 ? 1 : 2;
    };
    const loader = make();
    const batches = await epochIds(loader);
    expect(batches.flat().sort()).toEqual(data.map((e) => e.id).sort());
    for (const batch of batches) expect(new Set(batch.map(bucketOf)).size).toBe(1);
    const sizes = [0, 1, 2].map((k) => data.filter((e) => bucketOf(e.id) === k).length);
    expect(loader.length).toBe(sizes.reduce((n, s) => n + Math.ceil(s / 4), 0));
    expect(batches).toHaveLength(loader.length);
    // Full batches of the buckets interleave (not bucket after bucket); the incomplete ones come last.
    const fullBuckets = batches.filter((b) => b.length === 4).map((b) => bucketOf(b[0]));
    expect(fullBuckets).not.toEqual([...fullBuckets].sort());
    // Both modalities share batches (unlike groupByLength).
    expect(batches.some((b) => new Set(b.map((id) => id[0])).size === 2)).toBe(true);
    expect((await epochIds(make({ dropLast: true }))).every((b) => b.length === 4)).toBe(true);

    const original = make();
    disposeMultimodalBatch((await original.next())!);
    const state = original.state();
    expect(state.lengthBuckets).toBe('9,13');
    const rest = await epochIds(original);
    const restored = make();
    restored.restore(state);
    expect(await epochIds(restored)).toEqual(rest);
    expect(() => make({ lengthBuckets: [9] }).restore(state)).toThrow(/lengthBuckets = "9,13"/);
    expect(() => make({ lengthBuckets: undefined }).restore(state)).toThrow(/lengthBuckets/);
    // A state saved without buckets (also by versions before them) restores into a loader without them.
    const plain = make({ lengthBuckets: undefined });
    expect(plain.state()).not.toHaveProperty('lengthBuckets');
    expect(() => make({ lengthBuckets: undefined }).restore(plain.state())).not.toThrow();
    for (const l of [original, restored, plain]) l.dispose();

    expect(() => make({ lengthBuckets: [13, 9] })).toThrow(/positive integers in increasing order/);
    expect(() => make({ lengthBuckets: [0] })).toThrow(/lengthBuckets/);
    expect(() => make({ groupByLength: true })).toThrow(/lengthBuckets or groupByLength, not both/);
  });

  it('state()/restore(): a restored loader yields exactly the batches the original would have', async () => {
    const data = dataset(10);
    const opts = {
      batchSize: 3,
      padTokenId: PAD,
      loadImage: fillLoader,
      seed: 9,
      groupByLength: true,
      megabatchBatches: 2,
    };
    const original = new InstructionDataLoader(data, opts);
    for (let i = 0; i < 5; i++) {
      const b = await original.next(); // runs past the end of epoch 0 (4 batches) into epoch 1
      if (b) disposeMultimodalBatch(b);
    }
    const saved = JSON.parse(JSON.stringify(original.state()));
    expect(saved).toMatchObject({ epoch: 1, batchIndex: 0, seed: 9 });
    const b = (await original.next())!;
    disposeMultimodalBatch(b);
    const savedMid = original.state();
    const rest = await epochIds(original);
    const restored = new InstructionDataLoader(data, { ...opts, seed: 123 });
    restored.restore(savedMid);
    expect(await epochIds(restored)).toEqual(rest);
    const fromEpochStart = new InstructionDataLoader(data, opts);
    fromEpochStart.restore(saved);
    expect((await epochIds(fromEpochStart)).slice(1)).toEqual(rest);
    original.dispose();
    restored.dispose();
    fromEpochStart.dispose();

    expect(() => new InstructionDataLoader(data.slice(1), opts).restore(saved)).toThrow(
      /the state has examples = 10 but this loader has 9: build the loader from the same data/,
    );
    expect(() => new InstructionDataLoader(data, { ...opts, batchSize: 4 }).restore(saved)).toThrow(
      /batchSize = 3/,
    );
    const edited = [...data];
    edited[0] = example('other', [1, 2, 3], 1);
    expect(() => new InstructionDataLoader(edited, opts).restore(saved)).toThrow(/fingerprint/);
  });

  it('decodes the next batch’s images while the current one is in use, and reuses them', async () => {
    const calls: string[] = [];
    const pending = new Map<string, () => void>();
    const gatedLoader: ImageLoader = (path) => {
      calls.push(path);
      return new Promise((resolve) =>
        pending.set(path, () => resolve(tf.fill([3, 2, 4], pixelValue(path)) as tf.Tensor3D)),
      );
    };
    const data = [0, 1, 2, 3].map((i) => example(`m${i}`, [1, IMG, IMG, 5, 6], 3, [`img${i}.png`]));
    const loader = new InstructionDataLoader(data, {
      batchSize: 2,
      padTokenId: PAD,
      loadImage: gatedLoader,
      shuffle: false,
    });
    const release = (paths: string[]) => {
      for (const p of paths) pending.get(p)!();
    };
    const firstCall = loader.next();
    await Promise.resolve();
    expect(calls).toEqual(['img0.png', 'img1.png']);
    release(['img0.png', 'img1.png']);
    const first = (await firstCall)!;
    // Batch 1's decode started when batch 0 was returned, and is still running: next() did not wait for it.
    expect(calls).toEqual(['img0.png', 'img1.png', 'img2.png', 'img3.png']);
    expect(first.media!.image.map((l) => l[0].dataSync()[0])).toEqual([0, 1]);
    release(['img2.png', 'img3.png']);
    const second = (await loader.next())!;
    expect(second.media!.image.map((l) => l[0].dataSync()[0])).toEqual([2, 3]);
    expect(calls).toHaveLength(4); // reused, not decoded again
    disposeMultimodalBatch(first);
    disposeMultimodalBatch(second);
    expect(await loader.next()).toBeNull(); // epoch over; epoch 1's first batch starts decoding
    expect(calls).toHaveLength(6);
    release(['img0.png', 'img1.png']);
    loader.dispose();
  });

  it('leaves no tensor behind (batches disposed, prefetch released) and reports a failing image by path', async () => {
    const data = dataset(8);
    const before = tf.memory().numTensors;
    const loader = new InstructionDataLoader(data, {
      batchSize: 3,
      padTokenId: PAD,
      loadImage: fillLoader,
      seed: 2,
    });
    for (let i = 0; i < 4; i++) {
      const batch = await loader.next();
      if (batch) disposeMultimodalBatch(batch);
    }
    loader.dispose();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(tf.memory().numTensors).toBe(before);

    const broken = new InstructionDataLoader(data, {
      batchSize: 3,
      padTokenId: PAD,
      shuffle: false,
      loadImage: async (path) => {
        if (path === 'img1.png') throw new Error('corrupt PNG');
        return fillLoader(path);
      },
    });
    await expect(broken.next()).rejects.toThrow('loadImage failed for img1.png: corrupt PNG');
    expect(tf.memory().numTensors).toBe(before);
    expect(
      () =>
        new InstructionDataLoader(data.slice(0, 2), {
          batchSize: 3,
          padTokenId: PAD,
          loadImage: fillLoader,
          dropLast: true,
        }),
    ).toThrow(/2 example\(s\) give no batch of 3 with dropLast/);
  });
});

/** A real tiny image encoder: each of the H pixel rows (3·W values) is one token through a Linear. */
class RowEncoder extends Module implements ModalityEncoder {
  readonly hiddenSize = 6;
  readonly numHiddenStates = 1;
  readonly proj: Linear;
  constructor(init: Initializer) {
    super();
    this.proj = this.module('proj', new Linear(12, this.hiddenSize, { init }));
  }
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    return { tokens: itemShape[1], prefixTokens: 0 };
  }
  forward(batch: tf.Tensor, _opts?: EncodeOptions): EncoderOutput {
    const [B, C, H, W] = batch.shape;
    const rows = tf.reshape(tf.transpose(batch, [0, 2, 1, 3]), [B, H, C * W]);
    return { hiddenStates: [this.proj.forward(rows) as tf.Tensor3D], layout: { tokens: H, prefixTokens: 0 } };
  }
}

class LinearAdapter extends Module implements Adapter {
  readonly inDim = 6;
  readonly outDim = 16;
  readonly proj: Linear;
  constructor(init: Initializer) {
    super();
    this.proj = this.module('proj', new Linear(6, 16, { init }));
  }
  numSlots(layout: FeatureLayout): number {
    return layout.tokens;
  }
  forward(features: tf.Tensor3D): tf.Tensor3D {
    return this.proj.forward(features) as tf.Tensor3D;
  }
}

describe('InstructionDataLoader batches in MultimodalModel', () => {
  let model: MultimodalModel;
  beforeAll(() => {
    const init = new Initializer({ seed: 4, std: 0.3 });
    const llm = new LlamaForCausalLM(
      parseLlamaConfig({
        model_type: 'llama',
        vocab_size: 48,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
      }),
      { seed: 8 },
    );
    model = new MultimodalModel({
      llm,
      modalities: {
        image: {
          placeholderTokenId: IMG,
          encoder: new RowEncoder(init),
          select: { layer: -1, strategy: 'full' },
          adapter: new LinearAdapter(init),
        },
      },
    });
  });
  afterAll(() => model.dispose());

  it('the padded batch loss is the supervised-token-weighted mean of the unpadded per-sample losses', async () => {
    const data = [
      example('a', [1, IMG, IMG, 5, 6, 7, 8, 2], 5, ['img2.png']),
      example('b', [1, 9, 10, 11, 2], 3),
      example('c', [1, 12, IMG, IMG, 13, 14, 2], 4, ['img5.png']),
    ];
    const lossOf = async (examples: Example[]) => {
      const loader = new InstructionDataLoader(examples, {
        batchSize: examples.length,
        padTokenId: PAD,
        loadImage: fillLoader,
        shuffle: false,
      });
      const batch = (await loader.next())!;
      const loss = tf.tidy(() => model.forward(batch, { logits: false }).loss!.dataSync()[0]);
      disposeMultimodalBatch(batch);
      loader.dispose();
      return loss;
    };
    const batchLoss = await lossOf(data);
    // Targets per sample: supervised labels at positions >= 1 (the loss shifts: position t predicts t+1).
    const weights = data.map((e) => e.supervisedTokens);
    let weighted = 0;
    for (const [i, e] of data.entries()) weighted += (await lossOf([e])) * weights[i];
    expect(batchLoss).toBeCloseTo(weighted / weights.reduce((s, w) => s + w, 0), 5);
  });
});
