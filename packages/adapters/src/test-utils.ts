// Test helpers of the connectors: deterministic values, random-but-O(1) weights (so every term shows) and a
// gradient check of every parameter against central finite differences (float32: h = 1e-2 on O(1) losses).
import {
  type Adapter,
  type FeatureLayout,
  LlamaForCausalLM,
  type ModalityEncoder,
  Module,
  MultimodalModel,
  parseLlamaConfig,
  tf,
} from '@vistune/core';
import { expect } from 'vitest';

/** Deterministic values in about [-1, 1]. */
export function det(shape: number[], seed = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9),
    shape,
  );
}

/** Overwrites every parameter with deterministic values of about ±scale (zero-initialised gates included). */
export function randomizeParameters(m: Module, seed: number, scale = 0.3): void {
  m.namedParameters().forEach(([, v], i) => {
    tf.tidy(() => v.assign(tf.mul(det(v.shape, seed + i), scale) as tf.Tensor));
  });
}

/** Largest |a − b| / max|b|. */
export function relativeError(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
): number {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const b = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (a.length !== b.length) throw new Error(`relativeError: ${a.length} values vs ${b.length}`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / Math.max(scale, 1e-30);
}

/**
 * Checks d loss / d p of every trainable parameter of `m` (or those named) at `perParam` flat indices against
 * central differences; also that every gradient exists and is finite.
 */
export function expectGradientsMatchFiniteDifferences(
  m: Module,
  loss: () => tf.Scalar,
  opts: { names?: readonly string[]; perParam?: number; h?: number; tolerance?: number } = {},
): void {
  const h = opts.h ?? 1e-2;
  const params = m.trainableParameters().filter(([n]) => !opts.names || opts.names.includes(n));
  expect(params.length).toBeGreaterThan(0);
  const { value, grads } = tf.variableGrads(
    loss,
    params.map(([, v]) => v),
  );
  value.dispose();
  for (const [name, v] of params) {
    const g = grads[v.name];
    expect(g, `no gradient for ${name}`).toBeDefined();
    const analytic = g.dataSync();
    const base = v.dataSync().slice();
    const picks = Array.from({ length: Math.min(opts.perParam ?? 2, v.size) }, (_, k) =>
      Math.floor(((k + 0.5) * v.size) / Math.min(opts.perParam ?? 2, v.size)),
    );
    for (const i of picks) {
      const at = (delta: number) => {
        const shifted = base.slice();
        shifted[i] += delta;
        tf.tidy(() => v.assign(tf.tensor(shifted, v.shape)));
        const l = loss();
        const out = l.dataSync()[0];
        l.dispose();
        return out;
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
      const tol = (opts.tolerance ?? 3e-2) * Math.max(1, Math.abs(numeric));
      expect(
        Math.abs(numeric - analytic[i]),
        `${name}[${i}]: numeric ${numeric}, analytic ${analytic[i]}`,
      ).toBeLessThan(tol);
    }
  }
  tf.dispose(Object.values(grads));
}

/** An encoder whose "hidden state" is its input: the fixture's image features go straight to the adapter. */
export class FeatureEncoder extends Module implements ModalityEncoder<tf.Tensor> {
  readonly numHiddenStates = 1;
  constructor(readonly hiddenSize: number) {
    super();
  }
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    return { tokens: itemShape[0] as number, prefixTokens: 0 };
  }
  forward(batch: tf.Tensor) {
    return {
      hiddenStates: [tf.clone(batch) as tf.Tensor3D],
      layout: this.featureLayout(batch.shape.slice(1)),
    };
  }
}

/** Placeholder id of the tiny compositions (inside the vocabulary, as a real `<image>` token). */
export const IMAGE_TOKEN = 31;

/** A 32-word LLaMA (hidden 16, 4 heads / 2 KV heads); the same seed gives the same weights. */
export function tinyLlm(layers = 2, seed = 1): LlamaForCausalLM {
  return new LlamaForCausalLM(
    parseLlamaConfig({
      model_type: 'llama',
      vocab_size: 32,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: layers,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      tie_word_embeddings: false,
    }),
    { seed },
  );
}

/** The adapter on modality `image` of a tiny LLaMA (`tinyLlm`), fed raw features. */
export function tinyComposition(
  adapter: Adapter,
  opts: { layers?: number; seed?: number } = {},
): { model: MultimodalModel; llm: LlamaForCausalLM } {
  const llm = tinyLlm(opts.layers, opts.seed);
  const model = new MultimodalModel({
    llm,
    modalities: {
      image: {
        placeholderTokenId: IMAGE_TOKEN,
        encoder: new FeatureEncoder(adapter.inDim),
        select: { layer: -1, strategy: 'full' },
        adapter,
      },
    },
  });
  return { model, llm };
}

/** Input ids [prefix…, IMAGE_TOKEN × slots, suffix…]. */
export function promptWithImage(prefix: number[], slots: number, suffix: number[]): number[] {
  return [...prefix, ...Array(slots).fill(IMAGE_TOKEN), ...suffix];
}

/**
 * Logits of the composition for one prompt with one item, and of a twin plain LLM (same weights, no hooks)
 * fed the same spliced embeddings: equal when the connector's LLM-internal parts are gated off.
 */
export function hookedAndPlainLogits(
  adapter: Adapter,
  features: tf.Tensor,
  prompt: number[],
  layers = 2,
): { hooked: Float32Array; plain: Float32Array; dispose: () => void } {
  const { model } = tinyComposition(adapter, { layers });
  const twin = tinyLlm(layers);
  const ids = tf.tensor2d([prompt], undefined, 'int32');
  const media = { image: [[features]] };
  const hooked = tf.tidy(() => model.forward({ inputIds: ids, media }).logits?.dataSync() as Float32Array);
  const plain = tf.tidy(
    () =>
      twin
        .lmHead(twin.forward({ inputsEmbeds: model.embedInputs(ids, media) }).hidden)
        .dataSync() as Float32Array,
  );
  return {
    hooked,
    plain,
    dispose: () => {
      ids.dispose();
      twin.dispose();
      model.dispose();
    },
  };
}

/** The LM loss of one sample (prefix, item, supervised suffix) through the composition, as a closure. */
export function compositionLoss(
  model: MultimodalModel,
  features: tf.Tensor,
  slots: number,
): { loss: () => tf.Scalar; dispose: () => void } {
  const prompt = promptWithImage([1, 5], slots, [9, 4]);
  const ids = tf.tensor2d([prompt], undefined, 'int32');
  const labels = tf.tensor2d([prompt.map((t, i) => (i >= prompt.length - 2 ? t : -100))], undefined, 'int32');
  const loss = () =>
    model.forward({ inputIds: ids, labels, media: { image: [[features]] } }, { logits: false })
      .loss as tf.Scalar;
  return { loss, dispose: () => tf.dispose([ids, labels]) };
}

/**
 * Greedy ids decoded with the KV cache (media kept across steps) and the argmax of one full forward over the
 * prompt plus those ids, from the prompt's last position on: equal when cached decoding is right.
 */
export function cachedAndFullGreedy(
  model: MultimodalModel,
  features: tf.Tensor,
  prompt: number[],
  maxNewTokens = 3,
): { cached: number[]; full: number[] } {
  const ids = tf.tensor2d([prompt], undefined, 'int32');
  const cached = model.generate(ids, { image: [[features]] }, { maxNewTokens }).ids[0] as number[];
  ids.dispose();
  const sequence = [...prompt, ...cached];
  const full = tf.tidy(() => {
    const all = tf.tensor2d([sequence.slice(0, -1)], undefined, 'int32');
    const logits = model.forward({ inputIds: all, media: { image: [[features]] } }).logits as tf.Tensor3D;
    return Array.from(tf.argMax(logits, 2).dataSync()).slice(prompt.length - 1);
  });
  return { cached, full };
}
