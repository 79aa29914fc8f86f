import { createRegistry, initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisualExpertConfigSchema } from './config.js';
import { register } from './register.js';
import {
  cachedAndFullGreedy,
  compositionLoss,
  det,
  expectGradientsMatchFiniteDifferences,
  hookedAndPlainLogits,
  promptWithImage,
  randomizeParameters,
  relativeError,
  tinyComposition,
  tinyLlm,
} from './test-utils.js';
import { VisualExpertAdapter } from './visual-expert.js';

// The tiny LLaMA of test-utils: hidden 16, 4 heads / 2 KV heads, intermediate 32, 2 layers.
const tiny = { inDim: 6, outDim: 16, llmLayers: 2, llmHeads: 4, llmKeyValueHeads: 2, llmIntermediateSize: 32, intermediateSize: 12 };
const make = () => new VisualExpertAdapter(VisualExpertConfigSchema.parse(tiny));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('CogVLM visual expert (visual_expert)', () => {
  it('zero deltas: the untrained model gives the plain LLM’s logits', () => {
    const { hooked, plain, dispose } = hookedAndPlainLogits(make(), det([3, 6], 1), promptWithImage([1, 4], 3, [6, 8]));
    expect(Array.from(hooked)).toEqual(Array.from(plain));
    dispose();
  });

  it('image positions use W + Δ, text positions the LLM: a sequence of image slots only equals an LLM with W + Δ', () => {
    const a = make();
    randomizeParameters(a, 3, 0.05);
    const { model } = tinyComposition(a);
    const features = det([4, 6], 2);
    const media = { image: [[features]] };
    const allImage = tf.tensor2d([promptWithImage([], 4, [])], undefined, 'int32');
    const expert = tinyLlm();
    // The reference: every Linear of every layer replaced by W + Δ.
    const llmParams = new Map(expert.namedParameters());
    for (const [name, delta] of a.namedParameters()) {
      const m = /^layers\.(\d+)\.(\w+)\.weight$/.exec(name);
      if (!m) continue;
      const part = m[2] === 'gate_proj' || m[2] === 'up_proj' || m[2] === 'down_proj' ? 'mlp' : 'self_attn';
      const w = llmParams.get(`model.layers.${m[1]}.${part}.${m[2]}.weight`) as tf.Variable;
      w.assign(tf.add(w, delta));
    }
    const hooked = tf.tidy(() => model.forward({ inputIds: allImage, media }).logits?.dataSync() as Float32Array);
    const reference = tf.tidy(
      () => expert.lmHead(expert.forward({ inputsEmbeds: model.embedInputs(allImage, media) }).hidden).dataSync() as Float32Array,
    );
    expect(relativeError(hooked, reference)).toBeLessThan(1e-5);
    // Text before the image is the plain LLM's; text after it changes.
    const prompt = promptWithImage([1, 4], 4, [6, 8]);
    const { hooked: h, plain: p, dispose } = hookedAndPlainLogits(a, features, prompt);
    expect(Array.from(h.slice(0, 2 * 32))).toEqual(Array.from(p.slice(0, 2 * 32)));
    expect(relativeError(h.slice(-32), p.slice(-32))).toBeGreaterThan(1e-4);
    const { cached, full } = cachedAndFullGreedy(model, features, prompt);
    expect(full).toEqual(cached);
    dispose();
    model.dispose();
    expert.dispose();
    tf.dispose([features, allImage]);
  });

  it('trains on wasm with the LLM frozen: projector and expert gradients match finite differences', () => {
    const a = make();
    randomizeParameters(a, 5);
    const { model } = tinyComposition(a);
    model.trainOnly(['modalities.image.adapter.*']);
    const features = det([3, 6], 6);
    const { loss, dispose } = compositionLoss(model, features, 3);
    const names = a
      .namedParameters()
      .map(([n]) => `modalities.image.adapter.${n}`)
      .filter((n) => /layers\.1\.|linear_proj|gate_proj\.weight$|dense_4h/.test(n));
    expectGradientsMatchFiniteDifferences(model, loss, { names });
    model.dispose();
    dispose();
    features.dispose();
  });

  it('is registered as visual_expert; an LLM of other widths is an error naming the field', async () => {
    const registry = createRegistry();
    register(registry);
    const a = (await registry.create('adapter', { type: 'visual_expert', ...tiny, llmIntermediateSize: 24 })) as VisualExpertAdapter;
    expect(a.namedParameters().map(([n]) => n)).toContain('layers.1.down_proj.weight');
    const { model } = tinyComposition(a);
    const ids = tf.tensor2d([promptWithImage([1], 3, [2])], undefined, 'int32');
    expect(() => model.forward({ inputIds: ids, media: { image: [[det([3, 6], 1)]] } })).toThrow(/gate_proj maps 16 → 32.*llmIntermediateSize/);
    model.dispose();
    ids.dispose();
  });
});
