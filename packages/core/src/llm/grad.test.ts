// Gradients of the decoder (hand-written RoPE, SwiGLU, reshape and residual gradients, the freeing backprop)
// against central finite differences of the model's own forward.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Rng } from '../nn/rng.js';
import { variableGradsFreeing } from '../ops/index.js';
import { closeness, det, numericGrads } from '../ops/testing.js';
import { parseLlamaConfig } from './config.js';
import { LlamaForCausalLM } from './llama.js';
import { applyRotary, RotaryEmbedding } from './rope.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('decoder gradients', () => {
  it('applyRotary: the gradient equals central differences', () => {
    const rope = new RotaryEmbedding(8, 10000, 32);
    const angles = rope.range(3, 5);
    const x = det([2, 3, 5, 8], 1);
    const weights = det([2, 3, 5, 8], 2);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(applyRotary(t as tf.Tensor4D, angles), weights));
    const [analytic] = tf
      .grads(f)([x])
      .map((g) => g.dataSync());
    const [numeric] = numericGrads(f, [x]);
    expect(closeness(analytic, numeric)).toBeLessThan(1);
    rope.dispose();
  });

  it('every parameter kind of a GQA decoder gets the finite-difference gradient', () => {
    const config = parseLlamaConfig({
      model_type: 'llama',
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 29,
      max_position_embeddings: 32,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
    });
    const model = new LlamaForCausalLM(config, { seed: 3 });
    const rng = new Rng(5);
    for (const [name, p] of model.stateDict()) {
      const noise = rng.normal(p.size, 0.3, name.endsWith('norm.weight') ? 1 : 0);
      p.assign(tf.tensor(noise, p.shape));
    }
    const ids = tf.tensor2d(
      [
        [3, 7, 1, 28, 5, 5],
        [0, 2, 9, 9, 14, 21],
      ],
      [2, 6],
      'int32',
    );
    const weights = det([2, 6, 29], 9);
    const loss = () => tf.sum(tf.mul(model.logits(ids), weights)) as tf.Scalar;
    const params = model.namedParameters();
    const { value, grads } = variableGradsFreeing(
      loss,
      params.map(([, p]) => p),
    );
    value.dispose();
    const checked = [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.1.self_attn.v_proj.weight',
      'model.layers.1.self_attn.o_proj.weight',
      'model.layers.0.mlp.gate_proj.weight',
      'model.layers.0.mlp.up_proj.weight',
      'model.layers.1.mlp.down_proj.weight',
      'model.layers.0.input_layernorm.weight',
      'model.norm.weight',
      'lm_head.weight',
    ];
    for (const name of checked) {
      const p = params.find(([n]) => n === name)![1];
      const analytic = grads[p.name].dataSync();
      // Central differences on 4 entries of this parameter (the whole tensor would take thousands of forwards).
      const values = p.dataSync().slice();
      const entries = [0, 1, Math.floor(p.size / 2), p.size - 1];
      const h = 1e-2;
      const numeric = entries.map((i) => {
        const at = (delta: number) => {
          const shifted = values.slice();
          shifted[i] += delta;
          p.assign(tf.tensor(shifted, p.shape));
          return tf.tidy(() => loss().dataSync()[0]);
        };
        const d = (at(h) - at(-h)) / (2 * h);
        p.assign(tf.tensor(values, p.shape));
        return d;
      });
      const scale = Math.max(...Array.from(analytic, Math.abs));
      entries.forEach((i, k) => {
        expect(Math.abs(analytic[i] - numeric[k]), `${name}[${i}]`).toBeLessThan(2e-2 * scale + 2e-2);
      });
    }
    tf.dispose([...Object.values(grads), ids, weights]);
    model.dispose();
  });
});
