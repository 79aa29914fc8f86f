import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Adapter, createRegistry, initBackend, loadRecipe } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { register } from './register.js';

const RECIPES = fileURLToPath(new URL('../recipes/', import.meta.url));

interface Composition {
  llm: { hidden_size: number; num_hidden_layers: number };
  modalities: { image: { adapter: { type: string; llmLayers?: number } } };
}

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('connector recipes (packages/adapters/recipes)', () => {
  it('parse as recipes, and each adapter block builds through the registry, fitting its LLM', async () => {
    const files = (await readdir(RECIPES)).filter((f) => f.endsWith('.yaml'));
    const registry = createRegistry();
    register(registry);
    const types = new Set<string>();
    for (const file of files) {
      const recipe = await loadRecipe(`${RECIPES}${file}`);
      if (recipe.model.kind !== 'config') throw new Error(`${file}: expected an inline model config`);
      const composition = recipe.model.config.composition as Composition;
      const spec = composition.modalities.image.adapter;
      const adapter = (await registry.create('adapter', spec, {
        path: `${file}: model.composition.modalities.image.adapter`,
      })) as Adapter;
      expect(adapter.outDim, file).toBe(composition.llm.hidden_size);
      if (spec.llmLayers !== undefined) expect(spec.llmLayers, file).toBe(composition.llm.num_hidden_layers);
      types.add(spec.type);
      adapter.dispose();
    }
    expect([...types].sort()).toEqual([
      'bliva_qformer',
      'flamingo',
      'instructblip_qformer',
      'mm_adapter',
      'perceiver_resampler',
      'qformer',
      'qwen_resampler',
    ]);
  });
});
