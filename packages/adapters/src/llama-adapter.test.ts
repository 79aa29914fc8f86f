import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LlamaAdapterConfigSchema } from './config.js';
import { LlamaAdapter, promptedLayers } from './llama-adapter.js';
import { register } from './register.js';
import {
  cachedAndFullGreedy,
  compositionLoss,
  det,
  expectGradientsMatchFiniteDifferences,
  hookedAndPlainLogits,
  IMAGE_TOKEN,
  promptWithImage,
  randomizeParameters,
  relativeError,
  tinyComposition,
  tinyLlm,
} from './test-utils.js';

// The tiny LLaMA of test-utils: hidden 16, 4 heads / 2 KV heads, intermediate 32, 2 layers.
const tiny = {
  inDim: 6,
  outDim: 16,
  llmLayers: 2,
  llmHeads: 4,
  llmKeyValueHeads: 2,
  llmIntermediateSize: 32,
  promptLength: 3,
  visualDim: 8,
  visualDepth: 1,
  visualHeads: 2,
  visualMlpRatio: 2,
};
const make = (over: Record<string, unknown> = {}) => new LlamaAdapter(LlamaAdapterConfigSchema.parse({ ...tiny, ...over }));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('LLaMA-Adapter V2 (llama_adapter)', () => {
  it('prompts the bottom visualLayers (with the image) and the top adapterLayers (static)', () => {
    const c = (over: Record<string, unknown>) => LlamaAdapterConfigSchema.parse({ ...tiny, llmLayers: 6, ...over });
    expect(promptedLayers(c({ visualLayers: 1, adapterLayers: 2 }))).toEqual([
      { layer: 0, visual: true },
      { layer: 4, visual: false },
      { layer: 5, visual: false },
    ]);
    expect(promptedLayers(c({ visualLayers: 2 })).map((p) => p.layer)).toEqual([0, 1, 2, 3, 4, 5]);
    const a = make({ visualLayers: 1, adapterLayers: 0 });
    expect(a.adapter_query.shape).toEqual([3, 16]);
    const names = a.namedParameters().map(([n]) => n);
    expect(names).toContain('layers.0.gate');
    expect(names).not.toContain('layers.1.gate');
    expect(names).toContain('layers.1.down_proj.scale');
    expect(names).toContain('visual_blocks.0.attn.qkv.weight');
    a.dispose();
  });

  it('zero gates, zero biases, unit scales: the untrained model is the LLM with the image slots hidden', () => {
    const prompt = promptWithImage([1, 4], 3, [6, 8]);
    const shown = make({ hideSlots: false });
    const same = hookedAndPlainLogits(shown, det([4, 6], 1), prompt);
    expect(Array.from(same.hooked)).toEqual(Array.from(same.plain));
    same.dispose();

    // hideSlots: the plain LLM fed the same embeddings with the slot positions masked out.
    const a = make();
    const { model } = tinyComposition(a);
    const twin = tinyLlm();
    const ids = tf.tensor2d([prompt], undefined, 'int32');
    const media = { image: [[det([4, 6], 1)]] };
    const hooked = tf.tidy(() => model.forward({ inputIds: ids, media }).logits?.dataSync() as Float32Array);
    const plain = tf.tidy(() => {
      const mask = tf.tensor2d([prompt.map((t) => (t === IMAGE_TOKEN ? 0 : 1))], undefined, 'int32');
      const embeds = model.embedInputs(ids, media);
      return twin.lmHead(twin.forward({ inputsEmbeds: embeds, attentionMask: mask }).hidden).dataSync() as Float32Array;
    });
    const text = (v: Float32Array) => Array.from(v).filter((_, i) => prompt[Math.floor(i / 32)] !== IMAGE_TOKEN);
    expect(relativeError(text(hooked), text(plain))).toBeLessThan(1e-6);
    // Hidden slots: the text is blind to them, so without visual prompts the image changes nothing.
    const blind = make({ visualLayers: 0, adapterLayers: 2 });
    randomizeParameters(blind, 3);
    const other = tinyComposition(blind).model;
    const logitsFor = (features: tf.Tensor) =>
      tf.tidy(() => Array.from(other.forward({ inputIds: ids, media: { image: [[features]] } }).logits?.dataSync() ?? []));
    expect(text(Float32Array.from(logitsFor(det([4, 6], 2))))).toEqual(text(Float32Array.from(logitsFor(det([4, 6], 9)))));
    tf.dispose([ids, media.image[0]![0]!]);
    model.dispose();
    other.dispose();
    twin.dispose();
  });

  it('sees the image through the visual prompts once gates open, and decodes with the KV cache as the full forward', () => {
    const a = make({ visualLayers: 1, adapterLayers: 1 });
    randomizeParameters(a, 4, 1);
    const { model } = tinyComposition(a);
    const prompt = promptWithImage([1, 5], 3, [9]);
    const ids = tf.tensor2d([prompt], undefined, 'int32');
    const last = (features: tf.Tensor) =>
      tf.tidy(() => {
        const logits = model.forward({ inputIds: ids, media: { image: [[features]] } }).logits as tf.Tensor3D;
        return tf.slice(logits, [0, prompt.length - 1, 0], [1, 1, -1]).dataSync();
      });
    const f1 = det([4, 6], 2);
    const f2 = tf.neg(f1);
    // Small through the tiny LLM's 0.02-std k/v/o weights, but the blind variant above changes by exactly 0.
    expect(relativeError(last(f1), last(f2))).toBeGreaterThan(1e-5);
    const { cached, full } = cachedAndFullGreedy(model, f1, prompt);
    expect(full).toEqual(cached);
    model.dispose();
    tf.dispose([ids, f1, f2]);
  });

  it('trains on wasm through the LLM: adapter and LLM norms match finite differences', () => {
    const a = make({ visualLayers: 1, adapterLayers: 1 });
    randomizeParameters(a, 5);
    const { model } = tinyComposition(a);
    model.trainOnly(['modalities.image.adapter.*', 'llm.*norm.weight']);
    const features = det([4, 6], 6);
    const { loss, dispose } = compositionLoss(model, features, 3);
    const names = model
      .trainableParameters()
      .map(([n]) => n)
      .filter((n) => /gate|adapter_query|visual_query|visual_proj\.weight|clip_proj\.weight|q_proj\.(bias|scale)|down_proj\.bias|layers\.0\.input_layernorm/.test(n));
    expect(names.length).toBeGreaterThan(6);
    expectGradientsMatchFiniteDifferences(model, loss, { names });
    model.dispose();
    dispose();
    features.dispose();
  });

  it('is registered as llama_adapter; wrong LLM shapes are errors naming the field', async () => {
    const registry = createRegistry();
    register(registry);
    const ids = tf.tensor2d([promptWithImage([1], 3, [2])], undefined, 'int32');
    const wrong = async (over: Record<string, unknown>, message: RegExp) => {
      const a = (await registry.create('adapter', { type: 'llama_adapter', ...tiny, ...over })) as LlamaAdapter;
      const { model } = tinyComposition(a);
      expect(() => model.forward({ inputIds: ids, media: { image: [[det([4, 6], 1)]] } })).toThrow(message);
      model.dispose();
    };
    await wrong({ llmHeads: 2, biasTuning: false }, /set llmHeads to 4/);
    await wrong({ llmKeyValueHeads: 4 }, /k_proj gives 8 features, the tuned bias has 16/);
    ids.dispose();
    await expect(registry.create('adapter', { type: 'llama_adapter', ...tiny, llmIntermediateSize: undefined })).rejects.toThrow(
      /llmIntermediateSize/,
    );
  });
});
