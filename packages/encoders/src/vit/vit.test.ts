import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  gelu,
  Initializer,
  initBackend,
  linear,
  loadSafetensors,
  saveShardedSafetensors,
  tf,
} from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVisionConfig } from './config.js';
import { VisionTransformer } from './model.js';
import { loadPretrainedVisionTransformer } from './pretrained.js';
import { type Matrix, naiveVisionTransformer } from './test-reference.js';

const fixtureDir = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;
const llavaConfig = JSON.parse(readFileSync(`${fixtureDir}config.json`, 'utf8'));
const cases: { name: string; images: string[] }[] = JSON.parse(
  readFileSync(`${fixtureDir}cases.json`, 'utf8'),
).cases;
const imageCases = cases.filter((c) => c.images.length === 1);

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

beforeAll(async () => {
  await initBackend();
});

describe('VisionTransformer on the tiny LLaVA fixture (CLIP tower)', () => {
  let vit: VisionTransformer;
  let weights: Map<string, tf.Tensor>;
  let pixels: Map<string, tf.Tensor>;
  let expected: Map<string, tf.Tensor>;

  beforeAll(async () => {
    weights = await loadSafetensors(`${fixtureDir}model.safetensors`, {
      names: (n) => n.startsWith('vision_tower.') || n.startsWith('multi_modal_projector.'),
    });
    pixels = await loadSafetensors(`${fixtureDir}pixel_values.safetensors`);
    expected = await loadSafetensors(`${fixtureDir}expected.safetensors`, {
      names: (n) => n.endsWith('.image_features'),
    });
    vit = VisionTransformer.fromHFConfig(llavaConfig.vision_config, {
      init: new Initializer({ random: false }),
    });
  });

  afterAll(() => {
    vit.dispose();
    for (const m of [weights, pixels, expected]) for (const t of m.values()) t.dispose();
  });

  it('loads every vision_tower.vision_model.* tensor by its HF name', () => {
    const result = vit.loadHFWeights(weights, { source: 'model.safetensors' });
    expect(result.prefix).toBe('vision_tower.');
    expect(result.ignored).toEqual([]);
    expect(result.loaded).toBe(vit.stateDict().size);
    expect(vit.numPatches).toBe(16);
    expect(vit.hasClassToken).toBe(true);
    expect(vit.layout).toEqual({ tokens: 17, prefixTokens: 1, grid: [4, 4] });
  });

  it('reproduces image_features = projector(hidden_states[-2] without CLS) within 1e-4 × max|expected|', () => {
    const w = (name: string) => weights.get(`multi_modal_projector.${name}`) as tf.Tensor;
    const batch = tf.stack(imageCases.map((c) => pixels.get(c.images[0]) as tf.Tensor)) as tf.Tensor4D;
    const { hiddenStates, layout } = vit.forward(batch, { hiddenStates: [llavaConfig.vision_feature_layer] });
    expect(layout.prefixTokens).toBe(1);
    const features = tf.tidy(() => {
      const patches = tf.slice(hiddenStates[0], [0, 1, 0], [-1, -1, -1]);
      const h = gelu(linear(patches, w('linear_1.weight') as tf.Tensor2D, w('linear_1.bias') as tf.Tensor1D));
      return linear(h, w('linear_2.weight') as tf.Tensor2D, w('linear_2.bias') as tf.Tensor1D);
    });
    const got = features.arraySync() as number[][][];
    let worst = 0;
    let worstAbs = 0;
    imageCases.forEach((c, i) => {
      const want = (expected.get(`${c.name}.image_features`) as tf.Tensor).dataSync();
      const diff = maxAbsDiff(Float32Array.from(got[i].flat()), want);
      worst = Math.max(worst, diff / maxAbs(want));
      worstAbs = Math.max(worstAbs, diff);
      expect(diff).toBeLessThanOrEqual(1e-4 * maxAbs(want));
    });
    console.log(
      `ViT+projector vs fixture image_features (${imageCases.length} images batched): max|diff| = ${worstAbs.toExponential(2)}, relative ${worst.toExponential(2)}`,
    );
    tf.dispose([batch, features, ...hiddenStates]);
  });

  it('forward returns exactly the requested hidden states, equal to forwardAll', () => {
    const batch = tf.stack([pixels.get('image_0.png') as tf.Tensor]) as tf.Tensor4D;
    const warmUp = vit.forwardAll(batch); // fills core's transposed-weight cache (wasm)
    tf.dispose([...warmUp.hiddenStates, warmUp.lastHiddenState, warmUp.pooled as tf.Tensor]);
    const before = tf.memory().numTensors;
    const all = vit.forwardAll(batch);
    expect(tf.memory().numTensors - before).toBe(4); // 3 hidden states (last = lastHiddenState) + pooled
    expect(all.hiddenStates.length).toBe(3);
    const some = vit.forward(batch, { hiddenStates: [0, -1, 1] });
    expect(some.hiddenStates.length).toBe(3);
    expect(maxAbsDiff(some.hiddenStates[0].dataSync(), all.hiddenStates[0].dataSync())).toBe(0);
    expect(maxAbsDiff(some.hiddenStates[1].dataSync(), all.hiddenStates[2].dataSync())).toBe(0);
    expect(maxAbsDiff(some.hiddenStates[2].dataSync(), all.hiddenStates[1].dataSync())).toBe(0);
    expect(() => vit.forward(batch, { hiddenStates: [3] })).toThrow(/out of range for 2 layers/);
    tf.dispose([
      batch,
      ...all.hiddenStates,
      all.lastHiddenState,
      ...(all.pooled ? [all.pooled] : []),
      ...some.hiddenStates,
    ]);
  });

  it('rejects pixel values of the wrong size, naming the expected shape', () => {
    const wrong = tf.zeros([1, 3, 16, 16]) as tf.Tensor4D;
    expect(() => vit.forward(wrong)).toThrow(/expects \[B, 3, 32, 32\]/);
    wrong.dispose();
  });
});

/** Every parameter replaced by N(0, 0.5²) noise (LN weights around 1) so biases and norms all matter. */
function randomizeParameters(model: VisionTransformer, seed: number): void {
  const init = new Initializer({ seed, std: 0.5 });
  const noise = new Map<string, tf.Tensor>();
  for (const [name, p] of model.stateDict()) {
    const n = init.normal(p.shape);
    noise.set(name, /(norm\d?|layrnorm)\.weight$/.test(name) ? tf.add(n, 1) : n);
  }
  model.loadStateDict(noise);
  tf.dispose([...noise.values()]);
}

function toMatrices(t: tf.Tensor): Matrix[] {
  return (t.arraySync() as number[][][]).map((m) => m.map((row) => Float64Array.from(row)));
}

describe('VisionTransformer against a naive float64 reference (random weights, biases and norms)', () => {
  for (const modelType of ['clip_vision_model', 'siglip_vision_model'] as const) {
    it(`${modelType}: hidden states, last_hidden_state and pooled output`, () => {
      const config = parseVisionConfig({
        model_type: modelType,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        image_size: 12,
        patch_size: 4,
      });
      const vit = new VisionTransformer(config, { seed: 1 });
      randomizeParameters(vit, 2);
      const pixels = tf.randomNormal([2, 3, 12, 12], 0, 1, 'float32', 3) as tf.Tensor4D;
      const out = vit.forwardAll(pixels);
      const params = new Map([...vit.stateDict()].map(([k, v]) => [k, Float64Array.from(v.dataSync())]));
      const images = pixels.arraySync() as number[][][][];
      let worst = 0;
      images.forEach((image, b) => {
        const ref = naiveVisionTransformer(config, params, image);
        expect(out.hiddenStates.length).toBe(ref.hiddenStates.length);
        const compare = (got: Matrix, want: Matrix) => {
          for (let t = 0; t < want.length; t++) {
            for (let j = 0; j < want[t].length; j++)
              worst = Math.max(worst, Math.abs(got[t][j] - want[t][j]));
          }
        };
        for (const [l, want] of ref.hiddenStates.entries()) compare(toMatrices(out.hiddenStates[l])[b], want);
        compare(toMatrices(out.lastHiddenState)[b], ref.lastHiddenState);
        expect(out.pooled).toBeDefined();
        compare([Float64Array.from((out.pooled as tf.Tensor2D).arraySync()[b])], [ref.pooled]);
      });
      console.log(`${modelType} vs float64 reference: max|diff| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(2e-4);
      expect(out.lastHiddenState.shape).toEqual([2, modelType === 'clip_vision_model' ? 10 : 9, 8]);
      tf.dispose([pixels, ...out.hiddenStates, out.lastHiddenState, out.pooled as tf.Tensor]);
      vit.dispose();
    });
  }
});

describe('VisionTransformer loading and training', () => {
  const siglipConfig = {
    model_type: 'siglip_vision_model',
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    image_size: 8,
    patch_size: 4,
  };

  it('skips a SigLIP head that was not built, reporting it, and rejects unknown names', () => {
    const full = VisionTransformer.fromHFConfig(siglipConfig, { seed: 4 });
    const checkpoint = new Map<string, tf.Tensor>(
      [...full.stateDict()].map(([k, v]) => [`model.vision_tower.${k}`, v]),
    );
    const headless = VisionTransformer.fromHFConfig(siglipConfig, {
      withHead: false,
      init: new Initializer({ random: false }),
    });
    const result = headless.loadHFWeights(checkpoint);
    expect(result.prefix).toBe('model.vision_tower.');
    expect(result.ignored.length).toBe(full.stateDict().size - headless.stateDict().size);
    expect(result.ignored.every((n) => n.startsWith('model.vision_tower.vision_model.head.'))).toBe(true);
    const w = headless.stateDict().get('vision_model.embeddings.patch_embedding.weight') as tf.Variable;
    const src = full.stateDict().get('vision_model.embeddings.patch_embedding.weight') as tf.Variable;
    expect(maxAbsDiff(w.dataSync(), src.dataSync())).toBe(0);
    checkpoint.set('model.vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight', tf.zeros([12, 8]));
    expect(() => headless.loadHFWeights(checkpoint)).toThrow(
      /unexpected: vision_model\.encoder\.layers\.1\.mlp\.fc1\.weight/,
    );
    tf.dispose(
      checkpoint.get('model.vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight') as tf.Tensor,
    );
    full.dispose();
    headless.dispose();
  });

  it('loads a SiglipModel folder (sharded, text half present, vision_config without model_type) with its head', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-siglip-'));
    const source = VisionTransformer.fromHFConfig(siglipConfig, { seed: 9 });
    try {
      const { model_type: _, ...visionConfig } = siglipConfig;
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ model_type: 'siglip', vision_config: visionConfig, text_config: {} }),
      );
      const text = tf.ones([4, 8]);
      await saveShardedSafetensors(
        dir,
        new Map([...source.stateDict(), ['text_model.embeddings.token_embedding.weight', text]]),
        {
          maxShardBytes: 1000,
        },
      );
      text.dispose();
      const { model, ignored } = await loadPretrainedVisionTransformer(dir);
      expect(ignored).toEqual([]);
      expect(model.config.modelType).toBe('siglip_vision_model');
      expect(model.stateDict().size).toBe(source.stateDict().size);
      const pixels = tf.randomNormal([1, 3, 8, 8], 0, 1, 'float32', 10) as tf.Tensor4D;
      const a = source.forwardAll(pixels);
      const b = model.forwardAll(pixels);
      expect(maxAbsDiff((a.pooled as tf.Tensor).dataSync(), (b.pooled as tf.Tensor).dataSync())).toBe(0);
      tf.dispose([pixels, ...a.hiddenStates, a.lastHiddenState, a.pooled as tf.Tensor]);
      tf.dispose([...b.hiddenStates, b.lastHiddenState, b.pooled as tf.Tensor]);
      model.dispose();
    } finally {
      source.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('trains on wasm: the patch-embedding gradient matches central finite differences', async () => {
    await initBackend({ backend: 'wasm' });
    const vit = VisionTransformer.fromHFConfig(
      { ...siglipConfig, model_type: 'clip_vision_model' },
      { seed: 5 },
    );
    randomizeParameters(vit, 6);
    const pixels = tf.randomNormal([2, 3, 8, 8], 0, 1, 'float32', 7) as tf.Tensor4D;
    const probe = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 8);
    const loss = () =>
      tf.tidy(() => {
        const out = vit.forwardAll(pixels);
        return tf.add(
          tf.sum(tf.mul(out.lastHiddenState, probe)),
          tf.sum(out.pooled as tf.Tensor),
        ) as tf.Scalar;
      });
    const { grads } = tf.variableGrads(loss, vit.parameters());
    const patch = vit.stateDict().get('vision_model.embeddings.patch_embedding.weight') as tf.Variable;
    const analytic = grads[patch.name].dataSync();
    for (const g of Object.values(grads)) expect(Number.isFinite(maxAbs(g.dataSync()))).toBe(true);
    const base = patch.dataSync().slice();
    const eps = 1e-2;
    for (const i of [0, 17, 95]) {
      const at = (delta: number) => {
        const v = base.slice();
        v[i] += delta;
        tf.tidy(() => patch.assign(tf.tensor(v, patch.shape)));
        const l = loss();
        const value = l.dataSync()[0];
        l.dispose();
        return value;
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic[i])));
    }
    tf.dispose([pixels, probe, ...Object.values(grads)]);
    vit.dispose();
  });
});
