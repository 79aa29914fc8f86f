import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { createRegistry } from '../registry/registry.js';
import { LlamaForCausalLM } from './llama.js';
import { registerLlms } from './register.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('llm registry entries', () => {
  const registry = createRegistry();
  registerLlms(registry);

  it('lists llama, qwen2 and mistral', () => {
    expect(registry.list('llm').map((e) => e.name)).toEqual(['llama', 'mistral', 'qwen2']);
  });

  it('creates a random-init model from HF config fields, the family from the entry name', async () => {
    const llm = (await registry.create('llm', {
      type: 'qwen2',
      config: {
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 40,
      },
      seed: 3,
    })) as LlamaForCausalLM;
    expect(llm).toBeInstanceOf(LlamaForCausalLM);
    expect(llm.config).toMatchObject({ modelType: 'qwen2', qkvBias: true, hiddenSize: 32 });
    expect(llm.numParameters()).toBeGreaterThan(0);
    llm.dispose();
  });

  it('loads a pretrained folder (the fixture LLaVA language model) and checks the family', async () => {
    const llm = (await registry.create('llm', { type: 'llama', path: FIXTURE })) as LlamaForCausalLM;
    const logits = tf.tidy(() => llm.logits(tf.tensor2d([[1, 3148]], undefined, 'int32')));
    expect(logits.shape).toEqual([1, 2, 32064]);
    logits.dispose();
    llm.dispose();
    await expect(
      registry.create('llm', { type: 'qwen2', path: FIXTURE }, { path: 'model.llm' }),
    ).rejects.toThrow(`model.llm: type 'qwen2' but ${FIXTURE} holds a llama model: set type: llama`);
  });

  it('rejects configs naming both or neither of path and config, and bad HF fields by config path', async () => {
    await expect(registry.create('llm', { type: 'llama' }, { path: 'model.llm' })).rejects.toThrow(
      /give either path .* or config/,
    );
    const sizes = {
      hidden_size: 32,
      intermediate_size: 48,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      vocab_size: 40,
    };
    await expect(
      registry.create(
        'llm',
        { type: 'llama', config: { ...sizes, hidden_act: 'gelu' } },
        { path: 'model.llm' },
      ),
    ).rejects.toThrow('model.llm.config: hidden_act = "gelu" is not supported');
    await expect(
      registry.create('llm', { type: 'llama', config: { hidden_size: 32 } }, { path: 'model.llm' }),
    ).rejects.toThrow(
      'model.llm.config: missing intermediate_size, num_hidden_layers, num_attention_heads, vocab_size',
    );
  });
});
