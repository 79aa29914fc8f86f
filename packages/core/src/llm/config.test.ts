import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { llamaConfigToHf, parseLlamaConfig } from './config.js';
import { decoderConfigFromJson } from './weights.js';

const FIXTURE_CONFIG = fileURLToPath(
  new URL('../../../../fixtures/tiny-llava-hf/config.json', import.meta.url),
);

describe('parseLlamaConfig', () => {
  it('reads the fixture text_config (LLaVA) with HF names mapped to camelCase', () => {
    const c = decoderConfigFromJson(JSON.parse(readFileSync(FIXTURE_CONFIG, 'utf8')), 'config.json');
    expect(c).toMatchObject({
      modelType: 'llama',
      vocabSize: 32064,
      hiddenSize: 64,
      intermediateSize: 128,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositionEmbeddings: 512,
      tieWordEmbeddings: false,
      qkvBias: false,
      oProjBias: false,
      mlpBias: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      padTokenId: null,
    });
  });

  it('fills what a LLaVA text_config omits with transformers LlamaConfig defaults (llava-1.5-7b-hf)', () => {
    const c = decoderConfigFromJson(
      {
        model_type: 'llava',
        tie_word_embeddings: false,
        text_config: {
          model_type: 'llama',
          max_position_embeddings: 4096,
          rms_norm_eps: 1e-5,
          vocab_size: 32064,
        },
      },
      'config.json',
    );
    expect(c).toMatchObject({
      hiddenSize: 4096,
      intermediateSize: 11008,
      numHiddenLayers: 32,
      numAttentionHeads: 32,
      numKeyValueHeads: 32,
      headDim: 128,
      ropeTheta: 10000,
    });
  });

  it('qwen2 implies q/k/v biases without o_proj bias; mistral has none; llama follows attention_bias', () => {
    const dims = {
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 100,
    };
    expect(parseLlamaConfig({ ...dims, model_type: 'qwen2', tie_word_embeddings: true })).toMatchObject({
      qkvBias: true,
      oProjBias: false,
      mlpBias: false,
      tieWordEmbeddings: true,
      rmsNormEps: 1e-6,
    });
    expect(parseLlamaConfig({ ...dims, model_type: 'mistral', attention_bias: true })).toMatchObject({
      qkvBias: false,
      oProjBias: false,
    });
    expect(
      parseLlamaConfig({ ...dims, model_type: 'llama', attention_bias: true, mlp_bias: true }),
    ).toMatchObject({ qkvBias: true, oProjBias: true, mlpBias: true });
  });

  it('caps positions at an active sliding window (inside it attention is full) and ignores inactive ones', () => {
    const dims = {
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 4,
      vocab_size: 100,
    };
    expect(
      parseLlamaConfig({
        ...dims,
        model_type: 'mistral',
        sliding_window: 4096,
        max_position_embeddings: 32768,
      }),
    ).toMatchObject({
      maxPositionEmbeddings: 4096,
      maxPositionsFrom: 'sliding_window',
    });
    expect(
      parseLlamaConfig({
        ...dims,
        model_type: 'qwen2',
        use_sliding_window: false,
        sliding_window: 128,
        max_position_embeddings: 32768,
      }),
    ).toMatchObject({
      maxPositionEmbeddings: 32768,
      maxPositionsFrom: 'max_position_embeddings',
    });
  });

  it('reads rope_theta from transformers v5 rope_parameters, and eos lists', () => {
    const c = parseLlamaConfig({
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      vocab_size: 100,
      rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
      eos_token_id: [2, 7],
    });
    expect(c.ropeTheta).toBe(1e6);
    expect(c.eosTokenIds).toEqual([2, 7]);
  });

  it('rejects unsupported values naming the file, the field and what is supported', () => {
    const ok = {
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      vocab_size: 100,
    };
    expect(() =>
      parseLlamaConfig({ ...ok, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'a/config.json'),
    ).toThrow(
      'a/config.json: rope_scaling.rope_type = "llama3" is not supported (supported: null or "default" (plain RoPE))',
    );
    expect(() =>
      parseLlamaConfig({ ...ok, rope_scaling: { type: 'linear', factor: 2 } }, 'a/config.json'),
    ).toThrow(/rope_scaling.rope_type = "linear"/);
    expect(() => parseLlamaConfig({ ...ok, hidden_act: 'gelu' }, 'a/config.json')).toThrow(
      'a/config.json: hidden_act = "gelu" is not supported (supported: "silu")',
    );
    expect(() => parseLlamaConfig({ ...ok, model_type: 'gpt2' }, 'a/config.json')).toThrow(
      'a/config.json: model_type = "gpt2" is not supported (supported: llama, qwen2, mistral)',
    );
    expect(() => parseLlamaConfig({ ...ok, num_key_value_heads: 3 }, 'a/config.json')).toThrow(
      /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/,
    );
    expect(() => parseLlamaConfig({ ...ok, hidden_size: 'big' }, 'a/config.json')).toThrow(
      /a\/config.json is invalid:\n {2}hidden_size: expected number/,
    );
  });

  it('round-trips through llamaConfigToHf', () => {
    const dims = {
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 3,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      vocab_size: 100,
    };
    for (const json of [
      {
        ...dims,
        model_type: 'llama',
        attention_bias: true,
        head_dim: 16,
        rope_theta: 5e5,
        tie_word_embeddings: true,
        pad_token_id: 0,
      },
      { ...dims, model_type: 'qwen2', eos_token_id: [5, 6] },
      { ...dims, model_type: 'mistral', sliding_window: 64, max_position_embeddings: 1024 },
    ]) {
      const c = parseLlamaConfig(json);
      const again = parseLlamaConfig(llamaConfigToHf(c));
      expect({ ...again, maxPositionsFrom: c.maxPositionsFrom }).toEqual(c);
    }
  });
});
