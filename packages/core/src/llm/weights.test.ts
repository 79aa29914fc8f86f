import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { float16ToFloat32, float32ToFloat16 } from '../io/half.js';
import { saveSafetensors } from '../io/safetensors-write.js';
import { llamaConfigToHf, parseLlamaConfig } from './config.js';
import { LlamaForCausalLM } from './llama.js';
import { detectCheckpointLayout, loadCausalLM, saveCausalLM } from './weights.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'vistune-llm-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dims = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 90,
  max_position_embeddings: 64,
};
const ids = [4, 8, 15, 16, 23, 42];

function logits(model: LlamaForCausalLM): Float32Array {
  return tf.tidy(() => model.logits(tf.tensor2d([ids], undefined, 'int32')).dataSync() as Float32Array);
}

describe('saveCausalLM / loadCausalLM', () => {
  it('round-trips to identical logits (llama untied, qwen2 tied)', async () => {
    for (const json of [
      { ...dims, model_type: 'llama', tie_word_embeddings: false },
      { ...dims, model_type: 'qwen2', tie_word_embeddings: true },
    ]) {
      const model = new LlamaForCausalLM(parseLlamaConfig(json), { seed: 11 });
      const dir = join(root, `rt-${json.model_type}`);
      await saveCausalLM(model, dir);
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
      const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      expect(saved.model_type).toBe(json.model_type);
      const loaded = await loadCausalLM(dir);
      expect(loaded.config).toEqual(model.config);
      expect(Array.from(logits(loaded))).toEqual(Array.from(logits(model)));
      model.dispose();
      loaded.dispose();
    }
  });

  it('saves F16 and shards; loading upcasts and reassembles the shards', async () => {
    const model = new LlamaForCausalLM(parseLlamaConfig({ ...dims, tie_word_embeddings: false }), {
      seed: 12,
    });
    const dir = join(root, 'f16-sharded');
    await saveCausalLM(model, dir, { dtype: 'F16', maxShardBytes: 8000 });
    const files = await readdir(dir);
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(2);
    const loaded = await loadCausalLM(dir);
    for (const [name, p] of model.stateDict()) {
      const rounded = float16ToFloat32(float32ToFloat16(p.dataSync() as Float32Array));
      expect(Array.from(loaded.stateDict().get(name)!.dataSync()), name).toEqual(Array.from(rounded));
    }
    model.dispose();
    loaded.dispose();
  });

  it('loads the decoder of a newer-transformers LLaVA checkpoint (model.language_model.*, lm_head.weight)', async () => {
    const model = new LlamaForCausalLM(parseLlamaConfig({ ...dims, tie_word_embeddings: false }), {
      seed: 13,
    });
    const dir = join(root, 'llava-new');
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, p] of model.stateDict())
      tensors.set(name === 'lm_head.weight' ? name : name.replace(/^model\./, 'model.language_model.'), p);
    const vision = tf.ones([3, 3]);
    tensors.set('model.vision_tower.vision_model.post_layernorm.weight', vision);
    await saveSafetensors(join(dir, 'model.safetensors'), tensors);
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ model_type: 'llava', text_config: llamaConfigToHf(model.config) }),
    );
    expect(detectCheckpointLayout([...tensors.keys()])).toEqual({
      prefix: 'model.language_model.',
      wrapsCausalLM: false,
    });
    const loaded = await loadCausalLM(dir);
    expect(Array.from(logits(loaded))).toEqual(Array.from(logits(model)));
    vision.dispose();
    model.dispose();
    loaded.dispose();
  });

  it('reports missing, unexpected and wrongly shaped tensors by name and file before reading weights', async () => {
    const model = new LlamaForCausalLM(parseLlamaConfig({ ...dims, tie_word_embeddings: false }), {
      seed: 14,
    });
    const dir = join(root, 'broken');
    const tensors = new Map<string, tf.Tensor>(model.stateDict());
    tensors.delete('model.layers.1.mlp.up_proj.weight');
    const extraBias = tf.zeros([32]);
    const wrongNorm = tf.ones([31]);
    tensors.set('model.layers.0.self_attn.o_proj.bias', extraBias);
    tensors.set('model.norm.weight', wrongNorm);
    tensors.set('model.layers.0.self_attn.rotary_emb.inv_freq', extraBias); // an exporter's buffer: ignored
    await saveSafetensors(join(dir, 'model.safetensors'), tensors);
    await writeFile(join(dir, 'config.json'), JSON.stringify(llamaConfigToHf(model.config)));
    const before = tf.memory().numTensors;
    const error = await loadCausalLM(dir).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(error).toContain(`checkpoint ${dir} does not match its llama config ${join(dir, 'config.json')}`);
    expect(error).toContain('missing: model.layers.1.mlp.up_proj.weight');
    expect(error).toContain('unexpected: model.layers.0.self_attn.o_proj.bias (model.safetensors)');
    expect(error).toContain(
      'wrong shape: model.norm.weight in model.safetensors is [31], the config implies [32]',
    );
    expect(error).not.toContain('inv_freq');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([extraBias, wrongNorm]);
    model.dispose();
  });

  it('says which prefix it looked under when the decoder is absent', () => {
    expect(() => detectCheckpointLayout(['vision_tower.a', 'multi_modal_projector.linear_1.weight'])).toThrow(
      /no LLaMA-style decoder tensors found/,
    );
    expect(() => detectCheckpointLayout(['language_model.model.norm.weight'], 'text.')).toThrow(
      /no decoder tensors under prefix 'text.'/,
    );
    expect(
      detectCheckpointLayout(['language_model.model.norm.weight', 'language_model.lm_head.weight']),
    ).toEqual({ prefix: 'language_model.', wrapsCausalLM: true });
    expect(detectCheckpointLayout(['model.norm.weight'])).toEqual({ prefix: '', wrapsCausalLM: true });
  });
});
