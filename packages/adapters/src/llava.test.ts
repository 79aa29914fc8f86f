// End-to-end parity with the HF fixture: LLaVA folder → loadLlava (encoder + adapter from the registry) →
// image features, last-position logits and greedy ids of every case of fixtures/tiny-llava-hf/cases.json.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createLlava,
  createRegistry,
  encodeAndSelect,
  generate,
  initBackend,
  type LlavaForConditionalGeneration,
  loadLlava,
  loadSafetensors,
  type MediaInputs,
  readSafetensorsHeader,
  register as registerCore,
  saveLlava,
  tf,
} from '@vistune/core';
import { ImageProcessor, register as registerEncoders } from '@vistune/encoders';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerAdapters } from './register.js';

const FIXTURE = fileURLToPath(new URL('../../../fixtures/tiny-llava-hf', import.meta.url));

interface FixtureCase {
  name: string;
  images: string[];
  input_ids: number[];
  expected: { greedy_ids: number[]; logits_last_top5: { ids: number[] } };
}

function registry() {
  const r = createRegistry();
  registerCore(r);
  registerEncoders(r);
  registerAdapters(r);
  return r;
}

/** max |got - want| / max |want|. */
function relativeError(got: tf.Tensor, want: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0] / tf.max(tf.abs(want)).dataSync()[0]);
}

describe('LLaVA fixture parity (tiny-llava-hf)', () => {
  let model: LlavaForConditionalGeneration;
  let cases: FixtureCase[];
  let pixels: Map<string, tf.Tensor>;
  let expected: Map<string, tf.Tensor>;

  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    model = await loadLlava(FIXTURE, registry());
    cases = JSON.parse(await readFile(join(FIXTURE, 'cases.json'), 'utf8')).cases;
    pixels = await loadSafetensors(join(FIXTURE, 'pixel_values.safetensors'));
    expected = await loadSafetensors(join(FIXTURE, 'expected.safetensors'));
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([...pixels.values(), ...expected.values()]);
  });

  const imageFeatures = (images: tf.Tensor[]) =>
    tf.tidy(() => {
      const spec = model.modalities.get('image')!;
      const { features, layout } = encodeAndSelect(spec.encoder, tf.stack(images), spec.select);
      return spec.adapter.forward(features, { layout });
    });

  it('reads the config: image token, 16 slots per image, legacy weight names', () => {
    expect(model.config.imageTokenId).toBe(32000);
    expect(model.imageSeqLength).toBe(16);
    expect(model.numParameters()).toBeGreaterThan(2_000_000);
  });

  it('matches image_features, logits_last and 12 greedy ids for every case', () => {
    const report: string[] = [];
    for (const c of cases) {
      const images = c.images.map((png) => pixels.get(png)!);
      if (images.length) {
        const features = imageFeatures(images);
        const err = relativeError(features, expected.get(`${c.name}.image_features`)!);
        report.push(`${c.name} image_features ${err.toExponential(2)}`);
        expect(err).toBeLessThan(1e-4);
        features.dispose();
      }
      const ids = tf.tensor2d([c.input_ids], undefined, 'int32');
      const media: MediaInputs = images.length ? { image: [images] } : {};
      const { inputsEmbeds, attentionMask } = model.prepareGeneration(ids, media);
      const logitsLast = tf.tidy(() => {
        const { hidden } = model.llm.forward({ inputsEmbeds, attentionMask });
        return tf.reshape(
          model.llm.lmHead(tf.slice(hidden, [0, c.input_ids.length - 1, 0], [1, 1, -1])),
          [-1],
        );
      });
      const err = relativeError(logitsLast, expected.get(`${c.name}.logits_last`)!);
      report.push(`${c.name} logits_last ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      // Greedy through the model (splice once, then KV-cache decode) and through core's generate on the embeddings.
      expect(model.generate(ids, media, { maxNewTokens: 12 }).ids[0]).toEqual(c.expected.greedy_ids);
      const result = generate(
        model.llm,
        { inputsEmbeds, attentionMask, promptIds: [c.input_ids] },
        { maxNewTokens: 12 },
      );
      expect(result.ids[0]).toEqual(c.expected.greedy_ids);
      tf.dispose([ids, inputsEmbeds, attentionMask, logitsLast]);
    }
    console.log(`parity (max |diff| / max |expected|): ${report.join('; ')}`);
  });

  it('splices two images of one prompt in order (first image first)', () => {
    const [a, b] = [cases[0], cases[1]];
    const run = a.input_ids.filter((id) => id === 32000).length;
    const ids = [1, ...new Array(run).fill(32000), 13, ...new Array(run).fill(32000), 29871];
    const embeds = model.embedInputs(tf.tensor2d([ids], undefined, 'int32'), {
      image: [[pixels.get(a.images[0])!, pixels.get(b.images[0])!]],
    });
    const first = tf.slice(embeds, [0, 1, 0], [1, run, -1]);
    const second = tf.slice(embeds, [0, run + 2, 0], [1, run, -1]);
    expect(relativeError(first, expected.get(`${a.name}.image_features`)!)).toBeLessThan(1e-4);
    expect(relativeError(second, expected.get(`${b.name}.image_features`)!)).toBeLessThan(1e-4);
    tf.dispose([embeds, first, second]);
  });

  it('gives the same features from the PNGs through the ImageProcessor', async () => {
    const processor = ImageProcessor.fromConfig(
      JSON.parse(await readFile(join(FIXTURE, 'preprocessor_config.json'), 'utf8')),
    );
    for (const c of cases.filter((x) => x.images.length)) {
      const { pixelValues } = await processor.preprocessBatch(c.images.map((png) => join(FIXTURE, png)));
      const want = pixels.get(c.images[0])!;
      expect(tf.max(tf.abs(tf.sub(tf.squeeze(pixelValues, [0]), want))).dataSync()[0]).toBeLessThan(1e-6);
      const features = imageFeatures([tf.squeeze(pixelValues, [0])]);
      expect(relativeError(features, expected.get(`${c.name}.image_features`)!)).toBeLessThan(1e-4);
      tf.dispose([pixelValues, features]);
    }
  });

  it('saves in HF layout (legacy and new names) and loads back to the same logits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-llava-'));
    try {
      const c = cases[0];
      const ids = tf.tensor2d([c.input_ids], undefined, 'int32');
      const media = { image: [[pixels.get(c.images[0])!]] };
      const logits = (m: LlavaForConditionalGeneration) => m.forward({ inputIds: ids, media }).logits!;
      const before = logits(model);
      for (const names of ['legacy', 'new'] as const) {
        await saveLlava(model, join(dir, names), { names });
        const header = await readSafetensorsHeader(join(dir, names, 'model.safetensors'));
        const keys = [...header.tensors.keys()];
        if (names === 'legacy') {
          expect(keys).toContain('language_model.lm_head.weight');
          expect(keys).toContain('vision_tower.vision_model.pre_layrnorm.weight');
          expect(keys).toContain('multi_modal_projector.linear_2.bias');
        } else {
          expect(keys).toContain('lm_head.weight');
          expect(keys).toContain('model.language_model.embed_tokens.weight');
          expect(keys).toContain('model.vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight');
          expect(keys).toContain('model.multi_modal_projector.linear_1.weight');
        }
        const reloaded = await loadLlava(join(dir, names), registry());
        const after = logits(reloaded);
        expect(tf.max(tf.abs(tf.sub(after, before))).dataSync()[0]).toBe(0);
        tf.dispose(after);
        reloaded.dispose();
      }
      tf.dispose([before, ids]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('createLlava', () => {
  it('builds a seeded random LLaVA from a config object, deterministic per seed', async () => {
    const config = JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8'));
    const a = await createLlava(config, registry(), { seed: 5 });
    const b = await createLlava(config, registry(), { seed: 5 });
    const c = await createLlava(config, registry(), { seed: 6 });
    const names = a.namedParameters().map(([n]) => n);
    expect(names).toContain('modalities.image.encoder.vision_model.embeddings.patch_embedding.weight');
    expect(names).toContain('modalities.image.adapter.linear_1.weight');
    expect(names).toContain('llm.lm_head.weight');
    const w = (m: LlavaForConditionalGeneration) =>
      m.stateDict().get('modalities.image.adapter.linear_1.weight')!.dataSync();
    expect(Array.from(w(a))).toEqual(Array.from(w(b)));
    expect(Array.from(w(a))).not.toEqual(Array.from(w(c)));
    const sa = a.numParameters();
    const loaded = await loadLlava(FIXTURE, registry());
    expect(sa).toBe(loaded.numParameters());
    for (const m of [a, b, c, loaded]) m.dispose();
  });
});

describe('LLaVA with an instruction-aware projector (mm_projector_type film_mlp)', () => {
  it('creates, saves with its projector type and loads back to the same logits', async () => {
    const config = {
      ...JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8')),
      mm_projector_type: 'film_mlp',
    };
    const model = await createLlava(config, registry(), { seed: 2 });
    const dir = await mkdtemp(join(tmpdir(), 'vistune-film-'));
    try {
      expect(model.namedParameters().map(([n]) => n)).toContain('modalities.image.adapter.film.weight');
      const slots = model.imageSeqLength;
      const ids = [1, 450, ...Array(slots).fill(config.image_token_index), 3681, 29973];
      const pixels = tf.randomUniform([3, 32, 32], -1, 1, 'float32', 4) as tf.Tensor3D;
      const logits = (m: LlavaForConditionalGeneration, prompt: number[]) =>
        m.forward({
          inputIds: tf.tensor2d([prompt], [1, prompt.length], 'int32'),
          media: { image: [[pixels]] },
        }).logits as tf.Tensor;
      // The projector reads the prompt: other words around the same image change the image slots' outputs.
      const other = [...ids.slice(0, -2), 1724, 29973];
      expect(relativeError(logits(model, other), logits(model, ids))).toBeGreaterThan(1e-4);
      await saveLlava(model, dir);
      expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).mm_projector_type).toBe('film_mlp');
      const reloaded = await loadLlava(dir, registry());
      expect(relativeError(logits(reloaded, ids), logits(model, ids))).toBe(0);
      reloaded.dispose();
    } finally {
      model.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
