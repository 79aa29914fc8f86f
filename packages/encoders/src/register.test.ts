import { createRegistry, initBackend, loadSafetensors, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImageProcessor } from './image/processor.js';
import { register } from './index.js';
import { VisionTransformer } from './vit/model.js';

const fixtureDir = new URL('../../../fixtures/tiny-llava-hf/', import.meta.url).pathname;

beforeAll(async () => {
  await initBackend();
});

function registry() {
  const r = createRegistry();
  register(r);
  return r;
}

describe('register', () => {
  it('adds encoders clip_vision, cnn_vision, siglip_vision, image_patches and processors clip, siglip with one-line descriptions', () => {
    const listed = registry().list();
    expect(listed.map((e) => `${e.kind}/${e.name}`)).toEqual([
      'media/image',
      'encoder/clip_vision',
      'encoder/cnn_vision',
      'encoder/image_patches',
      'encoder/siglip_vision',
      'processor/clip',
      'processor/siglip',
    ]);
    for (const e of listed) expect(e.about).toMatch(/^[^\n]{10,120}$/);
  });

  it('maps HF type names to entries, and parts describe themselves as configs that recreate them', async () => {
    const r = registry();
    expect(r.findHf('encoder', 'siglip_vision_model')?.name).toBe('siglip_vision');
    expect(r.findHf('encoder', 'clip_vision_model')?.name).toBe('clip_vision');
    expect(r.findHf('processor', 'SiglipImageProcessor')?.name).toBe('siglip');
    expect(r.findHf('encoder', 'whisper_encoder')).toBeUndefined();
    const fromHf = r.get('encoder', 'siglip_vision').hf?.fromHf;
    expect(fromHf?.({ model_type: 'siglip_vision_model', hidden_size: 8, projection_dim: 3 })).toEqual({
      hidden_size: 8,
      with_head: false,
    });
    const tower = (await r.create('encoder', {
      type: 'clip_vision',
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      image_size: 8,
      patch_size: 4,
    })) as VisionTransformer;
    const again = (await r.create('encoder', tower.componentConfig())) as VisionTransformer;
    expect(again.namedParameters().map(([n, p]) => `${n}:${p.shape}`)).toEqual(
      tower.namedParameters().map(([n, p]) => `${n}:${p.shape}`),
    );
    tower.dispose();
    again.dispose();
    const processor = (await r.create('processor', {
      type: 'clip',
      size: { shortest_edge: 16 },
      crop_size: 16,
      image_aspect_ratio: 'pad',
    })) as ImageProcessor;
    const copy = (await r.create('processor', processor.processorConfig())) as ImageProcessor;
    expect(copy.settings).toEqual(processor.settings);
    expect(processor.media).toBe('image');
  });

  it('creates a seeded SigLIP tower from HF field names, deterministic per seed', async () => {
    const r = registry();
    const config = {
      type: 'siglip_vision',
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      image_size: 8,
      patch_size: 4,
    };
    const a = (await r.create('encoder', { ...config, seed: 3 })) as VisionTransformer;
    const b = (await r.create('encoder', { ...config, seed: 3, with_head: false })) as VisionTransformer;
    expect(a).toBeInstanceOf(VisionTransformer);
    expect(a.config).toMatchObject({
      modelType: 'siglip_vision_model',
      hiddenSize: 8,
      hiddenAct: 'gelu_pytorch_tanh',
      layerNormEps: 1e-6,
    });
    expect(a.hasClassToken).toBe(false);
    expect(a.stateDict().has('vision_model.head.probe')).toBe(true);
    expect(b.stateDict().has('vision_model.head.probe')).toBe(false);
    const w = (m: VisionTransformer) =>
      m.stateDict().get('vision_model.embeddings.patch_embedding.weight')?.dataSync();
    expect(Array.from(w(a) ?? [])).toEqual(Array.from(w(b) ?? []));
    a.dispose();
    b.dispose();
  });

  it('loads a pretrained tower from a LLaVA folder and rejects the wrong tower type', async () => {
    const r = registry();
    const vit = (await r.create('encoder', {
      type: 'clip_vision',
      pretrained: fixtureDir,
    })) as VisionTransformer;
    const file = await loadSafetensors(`${fixtureDir}model.safetensors`, {
      names: ['vision_tower.vision_model.pre_layrnorm.weight'],
    });
    const want = (file.get('vision_tower.vision_model.pre_layrnorm.weight') as tf.Tensor).dataSync();
    expect(Array.from(vit.stateDict().get('vision_model.pre_layrnorm.weight')?.dataSync() ?? [])).toEqual(
      Array.from(want),
    );
    tf.dispose([...file.values()]);
    vit.dispose();
    await expect(r.create('encoder', { type: 'siglip_vision', pretrained: fixtureDir })).rejects.toThrow(
      /holds a clip_vision_model/,
    );
    await expect(
      r.create('encoder', { type: 'clip_vision', pretrained: fixtureDir, hidden_size: 8 }),
    ).rejects.toThrow(/either pretrained or/);
    await expect(r.create('encoder', { type: 'clip_vision', hiden_size: 8 })).rejects.toThrow(/hiden_size/);
  });

  it('creates processors from a folder or from fields', async () => {
    const r = registry();
    const clip = (await r.create('processor', {
      type: 'clip',
      pretrained: fixtureDir,
      image_aspect_ratio: 'pad',
    })) as ImageProcessor;
    expect(clip).toBeInstanceOf(ImageProcessor);
    expect(clip.settings).toMatchObject({
      kind: 'clip',
      resize: { shortestEdge: 32 },
      centerCrop: { height: 32, width: 32 },
      padToSquare: true,
    });
    const siglip = (await r.create('processor', {
      type: 'siglip',
      size: { height: 16, width: 16 },
    })) as ImageProcessor;
    expect(siglip.settings).toMatchObject({
      kind: 'siglip',
      resize: { height: 16, width: 16 },
      centerCrop: null,
      resample: 'bicubic',
    });
  });
});
