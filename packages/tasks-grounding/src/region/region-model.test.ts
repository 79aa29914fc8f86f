import { LinearProjector } from '@vistune/adapters';
import {
  expandPlaceholders,
  initBackend,
  LlamaForCausalLM,
  MultimodalModel,
  parseLlamaConfig,
  tf,
} from '@vistune/core';
import { ImageTransform, VisionTransformer } from '@vistune/encoders';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Box } from '../box.js';
import { RegionProjector } from './region-adapter.js';
import { RegionEncoder, regionItem } from './region-encoder.js';
import { roiAlignWeights } from './roi-align.js';

const IMG = 60;
const REG = 61;
const HIDDEN = 16;
const S = 2; // RoIAlign output bins per side
const SELECT = { layer: -2, strategy: 'default' } as const;

// Original 64×48 padded to 64×64 (8 px on top), resized to the tower's 32×32.
const transform = new ImageTransform({
  originalWidth: 64,
  originalHeight: 48,
  padLeft: 0,
  padTop: 8,
  paddedWidth: 64,
  paddedHeight: 64,
  resizedWidth: 32,
  resizedHeight: 32,
  cropLeft: 0,
  cropTop: 0,
  width: 32,
  height: 32,
});

function pixels(seed: number): tf.Tensor3D {
  return tf.tensor3d(
    Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(seed * 17 + i * 0.37)),
    [3, 32, 32],
  );
}

describe('region inputs in a MultimodalModel (image + region sharing one vision tower)', () => {
  let vision: VisionTransformer;
  let model: MultimodalModel;
  let regionEncoder: RegionEncoder;
  let regionAdapter: RegionProjector;
  const images: tf.Tensor3D[] = [];
  const items: tf.Tensor1D[] = [];
  const boxes: Box[][] = [
    [
      [8, 4, 40, 36],
      [30, 0, 64, 48],
    ],
    [[0, 10, 20, 30]],
  ];

  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    vision = VisionTransformer.fromHFConfig(
      {
        model_type: 'clip_vision_model',
        hidden_size: HIDDEN,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        image_size: 32,
        patch_size: 8,
      },
      { seed: 1 },
    );
    regionEncoder = new RegionEncoder({ vision, ownsVision: false, imageShape: [3, 32, 32], outputSize: S });
    regionAdapter = new RegionProjector({
      inDim: HIDDEN,
      outDim: HIDDEN,
      outputSize: S,
      slots: 1,
      seed: 4,
      std: 0.2,
    });
    const llm = new LlamaForCausalLM(
      parseLlamaConfig({
        model_type: 'llama',
        vocab_size: 64,
        hidden_size: HIDDEN,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 128,
      }),
      { seed: 2 },
    );
    model = new MultimodalModel({
      llm,
      modalities: {
        image: {
          placeholderTokenId: IMG,
          encoder: vision,
          select: SELECT,
          adapter: new LinearProjector({
            type: 'linear',
            inDim: HIDDEN,
            outDim: HIDDEN,
            bias: true,
            seed: 3,
            std: 0.02,
          }),
        },
        region: { placeholderTokenId: REG, encoder: regionEncoder, select: SELECT, adapter: regionAdapter },
      },
    });
    images.push(pixels(1), pixels(2));
    items.push(regionItem(images[0], boxes[0], transform), regionItem(images[1], boxes[1], transform));
  });

  afterAll(() => {
    tf.dispose([...images, ...items]);
    model.dispose();
  });

  it('maps region boxes into the processed frame and counts K·slots slots per item', () => {
    // [8,4,40,36] → x/2, (y+8)/2 = [4, 6, 20, 22]; [30,0,64,48] → [15, 4, 32, 28].
    expect(Array.from(items[0].dataSync().slice(3 * 32 * 32))).toEqual([4, 6, 20, 22, 15, 4, 32, 28]);
    expect(model.slotsPerItem('region', items[0].shape)).toBe(2);
    expect(model.slotsPerItem('region', items[1].shape)).toBe(1);
    expect(model.slotsPerItem('image', images[0].shape)).toBe(16);
  });

  it('shares the tower: its parameters are named once, under the image modality', () => {
    const names = model.namedParameters().map(([n]) => n);
    expect(names.filter((n) => n.startsWith('modalities.region.encoder.'))).toEqual([]);
    expect(names).toContain('modalities.image.encoder.vision_model.embeddings.patch_embedding.weight');
    expect(names).toContain('modalities.region.adapter.linear_1.weight');
    expect(new Set(model.parameters()).size).toBe(names.length);
  });

  const batchIds = () => {
    // Sample 0: image, then two regions in the text; sample 1: image, one region, padding.
    const a = expandPlaceholders([1, IMG, 5, REG, 6, REG, 7, 2], IMG, 16);
    const b = expandPlaceholders([1, IMG, 8, REG, 9, 2], IMG, 16);
    const T = a.length;
    const padded = [...b, ...new Array(T - b.length).fill(0)];
    return {
      ids: [a, padded],
      mask: [a.map(() => 1), padded.map((_, i) => (i < b.length ? 1 : 0))],
      T,
    };
  };

  it('splices region slots (RoIAlign of the tower features → MLP) at the <region> positions, in order', () => {
    const { ids, T } = batchIds();
    const inputIds = tf.tensor2d(ids, [2, T], 'int32');
    const media = { image: [[images[0]], [images[1]]], region: [[items[0]], [items[1]]] };
    const embeds = model.embedInputs(inputIds, media);
    const rows = embeds.arraySync() as number[][][];
    // Independent path: tower → layer −2 → drop CLS → RoIAlign weights built per box → adapter.
    for (const n of [0, 1]) {
      const expected = tf.tidy(() => {
        const out = vision.forward(tf.expandDims(images[n], 0) as tf.Tensor4D, { hiddenStates: [-2] });
        const body = tf.slice(out.hiddenStates[0], [0, 1, 0], [-1, -1, -1]).arraySync()[0] as number[][];
        const processed = boxes[n].map((b): Box => [b[0] / 2, (b[1] + 8) / 2, b[2] / 2, (b[3] + 8) / 2]);
        const pooled = processed.flatMap((box) => {
          const w = roiAlignWeights(box, 4, 4, { outputSize: S, spatialScale: 4 / 32, samplingRatio: 2 });
          return Array.from({ length: S * S }, (_, q) =>
            Array.from({ length: HIDDEN }, (_, c) => body.reduce((s, f, p) => s + w[q * 16 + p] * f[c], 0)),
          );
        });
        const K = processed.length;
        const features = tf.tensor3d([pooled]);
        return regionAdapter
          .forward(features, { layout: { tokens: K * S * S, prefixTokens: 0, grid: [S, S], frames: K } })
          .arraySync()[0] as number[][];
      });
      const positions = ids[n].flatMap((id, t) => (id === REG ? [t] : []));
      expect(positions).toHaveLength(expected.length);
      positions.forEach((t, k) => {
        const diff = Math.max(...rows[n][t].map((v, c) => Math.abs(v - expected[k][c])));
        expect(diff).toBeLessThan(1e-4);
      });
    }
    tf.dispose([inputIds, embeds]);
  });

  it('gradients of the LM loss reach the region adapter and, through RoIAlign, the shared tower', () => {
    const { ids, mask, T } = batchIds();
    const inputIds = tf.tensor2d(ids, [2, T], 'int32');
    const attentionMask = tf.tensor2d(mask, [2, T], 'int32');
    const labels = tf.tensor2d(
      ids.map((row, b) => row.map((id, t) => (mask[b][t] && id !== IMG && id !== REG ? id : -100))),
      [2, T],
      'int32',
    );
    const media = { image: [[images[0]], [images[1]]], region: [[items[0]], [items[1]]] };
    const watched = model
      .namedParameters()
      .filter(([n]) => n.startsWith('modalities.region.adapter.') || n.endsWith('patch_embedding.weight'));
    const { value, grads } = tf.variableGrads(
      () => model.forward({ inputIds, attentionMask, labels, media }, { logits: false }).loss as tf.Scalar,
      watched.map(([, p]) => p),
    );
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    for (const [name, p] of watched) {
      const norm = tf.tidy(() => tf.norm(grads[p.name]).dataSync()[0]);
      expect(norm, name).toBeGreaterThan(0);
    }
    // Without region media the region adapter gets no gradient: the signal above comes from the region path.
    const textOnly = tf.tensor2d([expandPlaceholders([1, IMG, 5, 6, 7, 2], IMG, 16)], [1, 21], 'int32');
    const { grads: imageOnly } = tf.variableGrads(
      () =>
        model.forward(
          { inputIds: textOnly, labels: textOnly, media: { image: [[images[0]]] } },
          { logits: false },
        ).loss as tf.Scalar,
      watched.map(([, p]) => p),
    );
    const adapterWeight = watched.find(([n]) => n === 'modalities.region.adapter.linear_1.weight')?.[1];
    expect(adapterWeight).toBeDefined();
    // tfjs reports a variable the loss does not depend on as a missing gradient.
    const unconnected = adapterWeight ? (imageOnly[adapterWeight.name] as tf.Tensor | undefined) : undefined;
    expect(unconnected == null || tf.norm(unconnected as tf.Tensor).dataSync()[0] === 0).toBe(true);
    const held = [...Object.values(grads), ...Object.values(imageOnly)].filter(
      (g): g is tf.Tensor => g != null,
    );
    tf.dispose([inputIds, attentionMask, labels, value, textOnly, ...held]);
  });
});
