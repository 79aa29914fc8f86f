import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createModel, createRegistry, initBackend, loadRecipe, register as registerCore, tf } from '@vistune/core';
import { register as registerEncoders } from '@vistune/encoders';
import { beforeAll, describe, expect, it } from 'vitest';
import { register } from './register.js';

const RECIPES = fileURLToPath(new URL('../recipes/', import.meta.url));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('connector recipes (packages/adapters/recipes)', () => {
  it('each builds its model with createModel through the registry and runs a forward on one image', async () => {
    const files = (await readdir(RECIPES)).filter((f) => f.endsWith('.yaml')).sort();
    const registry = createRegistry();
    registerCore(registry);
    registerEncoders(registry);
    register(registry);
    const types: string[] = [];
    for (const file of files) {
      const recipe = await loadRecipe(`${RECIPES}${file}`);
      if (recipe.model.kind !== 'config') throw new Error(`${file}: expected an inline model config`);
      const { tokenizer, preprocessor, ...config } = recipe.model.config;
      expect([tokenizer, preprocessor], file).toEqual(['./world/tokenizer', './world/preprocessor_config.json']);
      const model = await createModel(config, registry, { seed: 1, source: file });
      const adapterConfig = model.composition?.modalities.image?.adapter;
      types.push(String(adapterConfig?.type));
      // The trained globs name parameters of this model.
      const trainable = model.trainOnly(recipe.stages[0]?.train ?? []);
      expect(trainable, file).toBeGreaterThan(0);
      const slots = model.slotsPerItem('image', [3, 64, 64]);
      const prompt = [1, 5, ...Array(slots).fill(4), 9, 10];
      const ids = tf.tensor2d([prompt], undefined, 'int32');
      const image = tf.randomUniform([3, 64, 64], -1, 1, 'float32', 3);
      const shape = tf.tidy(() => model.forward({ inputIds: ids, media: { image: [[image]] } }).logits?.shape);
      expect(shape, file).toEqual([1, prompt.length, 302]);
      tf.dispose([ids, image]);
      model.dispose();
    }
    expect(types).toEqual([
      'bliva_qformer',
      'c_abstractor',
      'visual_expert',
      'flamingo',
      'fuyu',
      'instructblip_qformer',
      'mm_adapter',
      'ldp',
      'llama_adapter',
      'mlp2x_gelu',
      'perceiver_resampler',
      'pixel_shuffle',
      'qformer',
      'qwen_resampler',
    ]);
  });
});
