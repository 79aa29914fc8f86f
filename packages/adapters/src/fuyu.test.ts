import { createRegistry, initBackend, type ModalityEncoder, MultimodalModel, tf } from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { beforeAll, describe, expect, it } from 'vitest';
import { FuyuProjectorConfigSchema } from './config.js';
import { FuyuProjector } from './fuyu.js';
import { register } from './register.js';
import { det, expectGradientsMatchFiniteDifferences, IMAGE_TOKEN, randomizeParameters, relativeError, tinyLlm } from './test-utils.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const layout = { tokens: 6, prefixTokens: 0, grid: [2, 3] as const };

describe('Fuyu projector (fuyu) on raw patches', () => {
  it('projects each patch and closes every row with the learnt separator', () => {
    const a = new FuyuProjector(FuyuProjectorConfigSchema.parse({ inDim: 4, outDim: 8 }));
    randomizeParameters(a, 1);
    expect(a.numSlots(layout)).toBe(8);
    const x = det([1, 6, 4], 2) as tf.Tensor3D;
    const out = a.forward(x, { layout }).arraySync()[0] as number[][];
    const projected = (a.vision_embed_tokens.forward(x) as tf.Tensor3D).arraySync()[0] as number[][];
    const separator = Array.from(a.newline_embedding?.dataSync() ?? []);
    // [p0 p1 p2 ⏎ p3 p4 p5 ⏎]
    expect(relativeError(out.flat(), [...projected.slice(0, 3), separator, ...projected.slice(3), separator].flat())).toBeLessThan(1e-6);
    const plain = new FuyuProjector(FuyuProjectorConfigSchema.parse({ inDim: 4, outDim: 8, newline: false }));
    expect(plain.numSlots(layout)).toBe(6);
    tf.dispose([x]);
    a.dispose();
    plain.dispose();
  });

  it('reads images of any size end to end (image_patches → fuyu → LLaMA) and trains on wasm', async () => {
    const registry = createRegistry();
    register(registry);
    registerEncoders(registry);
    const encoder = (await registry.create('encoder', { type: 'image_patches', patch_size: 4 })) as ModalityEncoder;
    const adapter = (await registry.create('adapter', { type: 'fuyu', inDim: 48, outDim: 16, seed: 3 })) as FuyuProjector;
    const model = new MultimodalModel({
      llm: tinyLlm(),
      modalities: { image: { placeholderTokenId: IMAGE_TOKEN, encoder, select: { layer: -1, strategy: 'full' }, adapter } },
    });
    // 6×10 pixels → 2×3 patches (padded) → 2 × (3 + 1) slots.
    const image = det([3, 6, 10], 4);
    expect(model.slotsPerItem('image', image.shape)).toBe(8);
    const prompt = [1, ...Array(8).fill(IMAGE_TOKEN), 9, 4];
    const ids = tf.tensor2d([prompt], undefined, 'int32');
    const labels = tf.tensor2d([prompt.map((t, i) => (i >= prompt.length - 2 ? t : -100))], undefined, 'int32');
    model.trainOnly(['modalities.image.adapter.*']);
    randomizeParameters(adapter, 2);
    const loss = () => model.forward({ inputIds: ids, labels, media: { image: [[image]] } }, { logits: false }).loss as tf.Scalar;
    expectGradientsMatchFiniteDifferences(model, loss);
    model.dispose();
    tf.dispose([image, ids, labels]);
  });
});
