import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel, type MediaProcessor, Tokenizer } from '@vistune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, wrapModel } from './model.js';
import { pipeline } from './pipeline.js';
import { createVistuneRegistry } from './registry.js';

const fixture = new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;

interface FixtureCase {
  question: string;
  images: string[];
  input_ids: number[];
  expected: { greedy_ids: number[]; greedy_text: string };
}
const cases = (JSON.parse(readFileSync(`${fixture}cases.json`, 'utf8')) as { cases: FixtureCase[] }).cases;
const imageCase = cases.find((c) => c.images.length === 1)!;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vistune-api-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function request(c: FixtureCase) {
  return {
    messages: [
      {
        role: 'user',
        content: [...c.images.map(() => ({ type: 'image' })), { type: 'text' as const, text: c.question }],
      },
    ],
    media: { image: c.images.map((i) => `${fixture}${i}`) },
  };
}

describe('loadModel / pipeline (the API the CLI is built on)', () => {
  it('answers a fixture case exactly as the PyTorch reference, and pipeline() gives the same text', async () => {
    const vlm = await loadModel(fixture, { discover: false });
    const n = imageCase.expected.greedy_ids.length;
    const out = await vlm.generate({ ...request(imageCase), maxNewTokens: n, eosTokenIds: [] });
    expect(out.inputIds).toEqual(imageCase.input_ids);
    expect(out.ids).toEqual(imageCase.expected.greedy_ids);
    expect([...vlm.modalities.keys()]).toEqual(['image']);
    vlm.dispose();
    const ask = await pipeline('image-text-to-text', fixture, { discover: false });
    const [answer] = await ask(
      { image: `${fixture}${imageCase.images[0]}`, text: imageCase.question },
      { maxNewTokens: n, eosTokenIds: [] },
    );
    expect(answer.generated_text).toBe(out.text);
    ask.dispose();
  });

  it('saves a loadable folder with the files HF writes (processor_config.json, preprocessor_config.json)', async () => {
    const vlm = await loadModel(fixture, { discover: false });
    const out = join(dir, 'resaved');
    await vlm.save(out);
    vlm.dispose();
    const processor = JSON.parse(await readFile(join(out, 'processor_config.json'), 'utf8'));
    expect(processor).toMatchObject({
      processor_class: 'LlavaProcessor',
      image_token: '<image>',
      patch_size: 8,
      num_additional_image_tokens: 1,
      vision_feature_select_strategy: 'default',
    });
    const pre = JSON.parse(await readFile(join(out, 'preprocessor_config.json'), 'utf8'));
    expect(pre).toMatchObject({ image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 32 } });
    const again = await loadModel(out, { discover: false });
    const n = imageCase.expected.greedy_ids.length;
    const res = await again.generate({ ...request(imageCase), maxNewTokens: n, eosTokenIds: [] });
    expect(res.ids).toEqual(imageCase.expected.greedy_ids);
    again.dispose();
  });

  it('a LLaVA folder with a SigLIP tower is preprocessed by its SiglipImageProcessor (no CLIP crop)', async () => {
    const registry = await createVistuneRegistry({ discover: false });
    const model = await createModel(
      {
        model_type: 'llava',
        image_token_index: 32000,
        vision_feature_select_strategy: 'full',
        vision_feature_layer: -1,
        text_config: {
          model_type: 'llama',
          vocab_size: 32064,
          hidden_size: 16,
          intermediate_size: 32,
          num_hidden_layers: 1,
          num_attention_heads: 2,
          max_position_embeddings: 256,
        },
        vision_config: {
          model_type: 'siglip_vision_model',
          hidden_size: 16,
          intermediate_size: 32,
          num_hidden_layers: 1,
          num_attention_heads: 2,
          image_size: 24,
          patch_size: 8,
        },
      },
      registry,
      { seed: 1 },
    );
    const processor = (await registry.create('processor', {
      type: 'siglip',
      size: { height: 24, width: 24 },
    })) as MediaProcessor;
    const tokenizer = await Tokenizer.fromDir(fixture);
    const built = await wrapModel(fixture, model, tokenizer, registry, { image: processor });
    const out = join(dir, 'siglip-llava');
    await built.save(out);
    built.dispose();
    const pre = JSON.parse(await readFile(join(out, 'preprocessor_config.json'), 'utf8'));
    expect(pre.image_processor_type).toBe('SiglipImageProcessor');
    const vlm = await loadModel(out, { registry });
    const res = await vlm.generate({ ...request(imageCase), maxNewTokens: 2 });
    expect(res.processed.image[0].tensor.shape).toEqual([3, 24, 24]);
    expect(res.inputIds.filter((id) => id === 32000)).toHaveLength(9);
    vlm.dispose();
  });
});
