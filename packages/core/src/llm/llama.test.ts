// LlamaForCausalLM against a float64 reference written from the HF modeling code (plain loops, no tfjs),
// with every bias / GQA / tying / head_dim variant the fixture does not cover; KV cache and left padding.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Rng } from '../nn/rng.js';
import { parseLlamaConfig } from './config.js';
import { LlamaForCausalLM } from './llama.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

type Weights = Map<string, { shape: number[]; data: Float64Array }>;

/** Replace every parameter with N(0, 0.3²) noise (norm weights 1 + noise), so biases and norms matter. */
function randomizeWeights(model: LlamaForCausalLM, seed: number): Weights {
  const rng = new Rng(seed);
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, p] of model.stateDict()) {
    const values = rng.normal(p.size, 0.3, name.endsWith('norm.weight') ? 1 : 0);
    tensors.set(name, tf.tensor(values, p.shape));
  }
  model.loadStateDict(tensors);
  const out: Weights = new Map();
  for (const [name, t] of tensors) {
    out.set(name, { shape: t.shape, data: Float64Array.from(t.dataSync()) });
    t.dispose();
  }
  return out;
}

/** y[t] = W x[t] + b with W [out, in]. */
function refLinear(x: number[][], w: Weights, name: string, hasBias: boolean): number[][] {
  const W = w.get(`${name}.weight`)!;
  const [out, inDim] = W.shape;
  const b = hasBias ? w.get(`${name}.bias`)!.data : null;
  return x.map((row) => {
    const y = new Array<number>(out).fill(0);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) s += W.data[o * inDim + i] * row[i];
      y[o] = s;
    }
    return y;
  });
}

function refRmsNorm(x: number[][], weight: Float64Array, eps: number): number[][] {
  return x.map((row) => {
    const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
    const r = 1 / Math.sqrt(ms + eps);
    return row.map((v, i) => v * r * weight[i]);
  });
}

/** HF LlamaForCausalLM forward in float64 for one unpadded sequence: logits [T, vocab]. */
function referenceLogits(c: ReturnType<typeof parseLlamaConfig>, w: Weights, ids: number[]): number[][] {
  const E = w.get('model.embed_tokens.weight')!;
  const Hd = c.hiddenSize;
  const D = c.headDim;
  const H = c.numAttentionHeads;
  const rep = H / c.numKeyValueHeads;
  let x = ids.map((id) => Array.from(E.data.subarray(id * Hd, (id + 1) * Hd)));
  const T = ids.length;
  // rotate_half RoPE: pairs (i, i + D/2) rotate by angle p · theta^(-2i/D)
  const rope = (v: number[], p: number): number[] => {
    const out = v.slice();
    for (let i = 0; i < D / 2; i++) {
      const a = p * c.ropeTheta ** (-(2 * i) / D);
      out[i] = v[i] * Math.cos(a) - v[i + D / 2] * Math.sin(a);
      out[i + D / 2] = v[i + D / 2] * Math.cos(a) + v[i] * Math.sin(a);
    }
    return out;
  };
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    const h = refRmsNorm(x, w.get(`${p}.input_layernorm.weight`)!.data, c.rmsNormEps);
    const q = refLinear(h, w, `${p}.self_attn.q_proj`, c.qkvBias);
    const k = refLinear(h, w, `${p}.self_attn.k_proj`, c.qkvBias);
    const v = refLinear(h, w, `${p}.self_attn.v_proj`, c.qkvBias);
    const attn = Array.from({ length: T }, () => new Array<number>(H * D).fill(0));
    for (let head = 0; head < H; head++) {
      const kvHead = Math.floor(head / rep);
      const qs = q.map((row, t) => rope(row.slice(head * D, (head + 1) * D), t));
      const ks = k.map((row, t) => rope(row.slice(kvHead * D, (kvHead + 1) * D), t));
      const vs = v.map((row) => row.slice(kvHead * D, (kvHead + 1) * D));
      for (let t = 0; t < T; t++) {
        const scores = ks
          .slice(0, t + 1)
          .map((kk) => kk.reduce((s, kv, d) => s + kv * qs[t][d], 0) / Math.sqrt(D));
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++)
          for (let d = 0; d < D; d++) attn[t][head * D + d] += (e[j] / z) * vs[j][d];
      }
    }
    const o = refLinear(attn, w, `${p}.self_attn.o_proj`, c.oProjBias);
    x = x.map((row, t) => row.map((val, i) => val + o[t][i]));
    const h2 = refRmsNorm(x, w.get(`${p}.post_attention_layernorm.weight`)!.data, c.rmsNormEps);
    const gate = refLinear(h2, w, `${p}.mlp.gate_proj`, c.mlpBias);
    const up = refLinear(h2, w, `${p}.mlp.up_proj`, c.mlpBias);
    const act = gate.map((row, t) => row.map((g, i) => (g / (1 + Math.exp(-g))) * up[t][i]));
    const down = refLinear(act, w, `${p}.mlp.down_proj`, c.mlpBias);
    x = x.map((row, t) => row.map((val, i) => val + down[t][i]));
  }
  x = refRmsNorm(x, w.get('model.norm.weight')!.data, c.rmsNormEps);
  return refLinear(x, w, c.tieWordEmbeddings ? 'model.embed_tokens' : 'lm_head', false);
}

const base = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 61,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
};
const variants = {
  'llama, attention + MLP biases, tied, 1 kv head, rope_theta 5e5': {
    ...base,
    model_type: 'llama',
    num_key_value_heads: 1,
    attention_bias: true,
    mlp_bias: true,
    tie_word_embeddings: true,
    rope_theta: 500000,
  },
  'qwen2 (q/k/v biases), 2 kv heads, untied': {
    ...base,
    model_type: 'qwen2',
    num_key_value_heads: 2,
    tie_word_embeddings: false,
  },
  'mistral, head_dim 16 ≠ hidden/heads, no GQA': {
    ...base,
    model_type: 'mistral',
    num_key_value_heads: 4,
    head_dim: 16,
    sliding_window: null,
  },
};

/** max |a - b| over equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}

function maxAbsDiff(a: number[][], b: ArrayLike<number>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  a.flat().forEach((v, i) => {
    diff = Math.max(diff, Math.abs(v - b[i]));
    scale = Math.max(scale, Math.abs(v));
  });
  return { diff, scale };
}

describe('LlamaForCausalLM vs a float64 reference', () => {
  for (const [label, json] of Object.entries(variants)) {
    it(label, () => {
      const config = parseLlamaConfig(json);
      const model = new LlamaForCausalLM(config, { seed: 1 });
      const weights = randomizeWeights(model, 2);
      const ids = [3, 17, 60, 0, 42, 42, 7, 19, 33];
      const want = referenceLogits(config, weights, ids);
      const got = tf.tidy(() => model.logits(tf.tensor2d([ids], undefined, 'int32')).dataSync());
      const { diff, scale } = maxAbsDiff(want, got);
      expect(diff).toBeLessThanOrEqual(1e-4 * scale);
      model.dispose();
    });
  }
});

describe('LlamaForCausalLM structure', () => {
  it('uses exactly the HF parameter names and shapes', () => {
    const c = parseLlamaConfig({
      ...base,
      num_hidden_layers: 1,
      model_type: 'qwen2',
      num_key_value_heads: 2,
      tie_word_embeddings: false,
    });
    const model = new LlamaForCausalLM(c);
    const shapes = Object.fromEntries([...model.stateDict()].map(([n, p]) => [n, p.shape]));
    expect(shapes).toEqual({
      'model.embed_tokens.weight': [61, 32],
      'model.layers.0.self_attn.q_proj.weight': [32, 32],
      'model.layers.0.self_attn.q_proj.bias': [32],
      'model.layers.0.self_attn.k_proj.weight': [16, 32],
      'model.layers.0.self_attn.k_proj.bias': [16],
      'model.layers.0.self_attn.v_proj.weight': [16, 32],
      'model.layers.0.self_attn.v_proj.bias': [16],
      'model.layers.0.self_attn.o_proj.weight': [32, 32],
      'model.layers.0.mlp.gate_proj.weight': [48, 32],
      'model.layers.0.mlp.up_proj.weight': [48, 32],
      'model.layers.0.mlp.down_proj.weight': [32, 48],
      'model.layers.0.input_layernorm.weight': [32],
      'model.layers.0.post_attention_layernorm.weight': [32],
      'model.norm.weight': [32],
      'lm_head.weight': [61, 32],
    });
    model.dispose();
    const tied = new LlamaForCausalLM(parseLlamaConfig({ ...base, tie_word_embeddings: true }));
    expect([...tied.stateDict().keys()]).not.toContain('lm_head.weight');
    tied.dispose();
  });

  it('initialises like HF: N(0, initializer_range²) weights, unit norms, zero pad row, seeded', () => {
    const c = parseLlamaConfig({
      ...base,
      vocab_size: 500,
      tie_word_embeddings: false,
      pad_token_id: 3,
      initializer_range: 0.05,
    });
    const a = new LlamaForCausalLM(c, { seed: 5 });
    const b = new LlamaForCausalLM(c, { seed: 5 });
    const other = new LlamaForCausalLM(c, { seed: 6 });
    const table = a.model.embedTokens.weight.dataSync() as Float32Array;
    expect(Array.from(table)).toEqual(Array.from(b.model.embedTokens.weight.dataSync()));
    expect(Array.from(table)).not.toEqual(Array.from(other.model.embedTokens.weight.dataSync()));
    const rows = Array.from(table.subarray(32 * 3, 32 * 4));
    expect(rows.every((v) => v === 0)).toBe(true);
    const head = Array.from(a.head!.weight.dataSync());
    const std = Math.sqrt(head.reduce((s, v) => s + v * v, 0) / head.length);
    expect(std).toBeGreaterThan(0.047);
    expect(std).toBeLessThan(0.053);
    expect(Array.from(a.model.norm.weight.dataSync()).every((v) => v === 1)).toBe(true);
    for (const m of [a, b, other]) m.dispose();
  });

  it('lm_head follows weight reassignment (the op layer caches transposes) and gets gradients under a tape', () => {
    const c = parseLlamaConfig({ ...base, tie_word_embeddings: false });
    const model = new LlamaForCausalLM(c, { seed: 8 });
    const hidden = tf.randomNormal([1, 3, 32], 0, 1, 'float32', 1) as tf.Tensor3D;
    const head = () => tf.tidy(() => model.lmHead(hidden).dataSync());
    const before = head();
    const update = tf.mul(model.head!.weight, -2);
    model.loadStateDict({ 'lm_head.weight': update }, { strict: false });
    update.dispose();
    expect(
      maxDiff(
        head(),
        before.map((v) => -2 * v),
      ),
    ).toBeLessThan(1e-5);
    const grads = tf.variableGrads(() => tf.sum(tf.square(model.lmHead(hidden))), [model.head!.weight]);
    const [gradHead] = Object.values(grads.grads);
    expect(gradHead.shape).toEqual([61, 32]);
    expect(tf.max(tf.abs(gradHead)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([grads.value, ...Object.values(grads.grads), hidden]);
    model.dispose();
  });

  it('wraps chosen decoder blocks (BlockWrappableLM) with the call context, until unwrapped', () => {
    const model = new LlamaForCausalLM(
      parseLlamaConfig({ ...base, num_hidden_layers: 3, tie_word_embeddings: false }),
      { seed: 9 },
    );
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const plain = tf.tidy(() => model.logits(ids).dataSync());
    const seen: number[] = [];
    const media = new Map([
      [
        'image',
        { slots: tf.zeros([0, 32]) as tf.Tensor2D, sample: new Int32Array(0), position: new Int32Array(0) },
      ],
    ]);
    model.setMedia(media);
    // Skipping blocks 1 and 2 (identity instead of the block) must equal norm + head over block 0 alone.
    const undo = model.wrapBlocks({
      layers: (n) => [n - 2, n - 1],
      wrap: (_block, layerIndex) => (hidden, ctx) => {
        seen.push(layerIndex);
        expect(ctx.media.get('image')).toBe(media.get('image'));
        return hidden;
      },
    });
    const skipped = tf.tidy(() => model.logits(ids).dataSync());
    // The same weights without blocks 1 and 2: a one-layer model.
    const oneLayer = new LlamaForCausalLM(
      parseLlamaConfig({ ...base, num_hidden_layers: 1, tie_word_embeddings: false }),
    );
    oneLayer.loadStateDict(
      new Map([...model.stateDict()].filter(([name]) => !/^model\.layers\.[12]\./.test(name))),
    );
    const want = tf.tidy(() => oneLayer.logits(ids).dataSync());
    oneLayer.dispose();
    expect(seen).toEqual([1, 2]);
    expect(maxDiff(want, skipped)).toBeLessThan(1e-5);
    undo();
    expect(Array.from(tf.tidy(() => model.logits(ids).dataSync()))).toEqual(Array.from(plain));
    expect(() => model.wrapBlocks({ layers: () => [3], wrap: (b) => b })).toThrow(
      'wrapBlocks: layer indices 3 are outside [0, 3)',
    );
    tf.dispose([ids, media.get('image')!.slots]);
    model.dispose();
  });

  it('reaches inside blocks (DecoderBlockInternals): identity hooks change nothing, each member acts where it says', () => {
    const config = parseLlamaConfig({ ...base, num_hidden_layers: 2, tie_word_embeddings: false });
    const model = new LlamaForCausalLM(config, { seed: 4 });
    const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
    const logits = () => tf.tidy(() => Array.from(model.logits(ids).dataSync()));
    const plain = logits();
    const seen: string[] = [];
    const identity = model.wrapBlocks({
      layers: (n) => Array.from({ length: n }, (_, i) => i),
      internals: (i) => ({
        attentionInput: (x, ctx) => {
          seen.push(`attn${i}@${ctx.pastLength}`);
          return x;
        },
        mlpInput: (x) => x,
        project: (which, x, base) => {
          seen.push(`${which}${i}`);
          return base(x);
        },
        attentionExtra: (q) => tf.zerosLike(q),
      }),
    });
    expect(logits()).toEqual(plain);
    expect(seen).toEqual(
      [0, 1].flatMap((i) => [
        `attn${i}@0`,
        `q_proj${i}`,
        `k_proj${i}`,
        `v_proj${i}`,
        `o_proj${i}`,
        `mlp${i}`,
        `gate_proj${i}`,
        `up_proj${i}`,
        `down_proj${i}`,
      ]),
    );
    identity();
    // A zero o_proj on layer 1 through the hook equals zeroed o_proj weights.
    const zeroOut = model.wrapBlocks({
      layers: () => [1],
      internals: () => ({ project: (which, x, b) => (which === 'o_proj' ? tf.zerosLike(b(x)) : b(x)) }),
    });
    const hooked = logits();
    zeroOut();
    const o = model.model.layers[1].selfAttn.oProj.weight;
    const saved = o.clone();
    o.assign(tf.zerosLike(o));
    expect(maxDiff(hooked, logits())).toBeLessThan(1e-6);
    o.assign(saved);
    // attentionExtra adds to the heads' output; with a KV cache the decode step sees pastLength = prefill length.
    const lengths: number[] = [];
    const extra = model.wrapBlocks({
      layers: () => [0],
      internals: () => ({
        attentionExtra: (q, parts, ctx) => {
          lengths.push(ctx.pastLength);
          expect(parts.keys(tf.zeros([1, 2, config.hiddenSize])).shape).toEqual([
            1,
            2,
            parts.numKeyValueHeads * parts.headDim,
          ]);
          return tf.onesLike(q);
        },
      }),
    });
    expect(maxDiff(logits(), plain)).toBeGreaterThan(1e-3);
    const cache = model.createCache(1);
    tf.tidy(() => {
      model.forward({ inputsEmbeds: model.embed(ids), cache });
      model.forward({ inputsEmbeds: model.embed(tf.tensor2d([[5]], undefined, 'int32')), cache });
    });
    expect(lengths.slice(-2)).toEqual([0, 4]);
    extra();
    expect(logits()).toEqual(plain);
    // keyMask: a hook hiding key 1 from every layer equals the call's attention mask with 0 there.
    const masks: { batch: number; keys: number }[] = [];
    const hide = model.wrapBlocks({
      layers: (n) => Array.from({ length: n }, (_, i) => i),
      internals: () => ({
        keyMask: (mask, shape) => {
          masks.push(shape);
          return tf.mul(mask ?? tf.ones([shape.batch, shape.keys]), tf.tensor2d([[1, 0, 1, 1]])) as tf.Tensor2D;
        },
      }),
    });
    const hidden = logits();
    hide();
    expect(masks).toEqual([{ batch: 1, keys: 4 }, { batch: 1, keys: 4 }]);
    const masked = tf.tidy(() => {
      const mask = tf.tensor2d([[1, 0, 1, 1]], undefined, 'int32');
      return Array.from(model.lmHead(model.forward({ inputsEmbeds: model.embed(ids), attentionMask: mask }).hidden).dataSync());
    });
    expect(maxDiff(hidden, masked)).toBeLessThan(1e-6);
    expect(maxDiff(hidden, plain)).toBeGreaterThan(1e-4);
    tf.dispose([ids, saved]);
    cache.dispose();
    model.dispose();
  });

  it('refuses sequences past max_position_embeddings, naming the field', () => {
    const model = new LlamaForCausalLM(
      parseLlamaConfig({ ...base, max_position_embeddings: 8, tie_word_embeddings: true }),
    );
    expect(() => model.logits(tf.zeros([1, 9], 'int32') as tf.Tensor2D)).toThrow(
      /supports 8 positions \(max_position_embeddings/,
    );
    model.dispose();
  });
});

describe('KV cache and left padding', () => {
  const config = parseLlamaConfig({ ...variants['qwen2 (q/k/v biases), 2 kv heads, untied'] });
  let model: LlamaForCausalLM;
  beforeAll(() => {
    model = new LlamaForCausalLM(config, { seed: 3 });
    randomizeWeights(model, 4);
  });
  const ids = [5, 9, 14, 2, 40, 33, 8, 1, 27, 11];

  function fullLogits(seq: number[]): Float32Array {
    return tf.tidy(() => model.logits(tf.tensor2d([seq], undefined, 'int32')).dataSync() as Float32Array);
  }

  it('decoding through the cache (prefill 5, then 1, 1 and a chunk of 3) equals full recompute', () => {
    const full = fullLogits(ids); // also builds the RoPE tables, which live as long as the model
    const before = tf.memory().numTensors;
    const V = config.vocabSize;
    const cache = model.createCache(1);
    let offset = 0;
    for (const n of [5, 1, 1, 3]) {
      const chunk = ids.slice(offset, offset + n);
      const got = tf.tidy(() => {
        const { hidden } = model.forward({
          inputsEmbeds: model.embed(tf.tensor2d([chunk], undefined, 'int32')),
          cache,
        });
        return model.lmHead(hidden).dataSync();
      });
      const want = full.subarray(offset * V, (offset + n) * V);
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
      offset += n;
      expect(cache.length).toBe(offset);
    }
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a left-padded batch (mask + position ids) equals each row alone, in prefill and cached decode', () => {
    const rowA = ids.slice(0, 7);
    const rowB = ids.slice(3, 7);
    const pad = rowA.length - rowB.length;
    const V = config.vocabSize;
    const cache = model.createCache(2);
    const mask = [
      [1, 1, 1, 1, 1, 1, 1],
      [0, 0, 0, 1, 1, 1, 1],
    ];
    const positions = [
      [0, 1, 2, 3, 4, 5, 6],
      [1, 1, 1, 0, 1, 2, 3],
    ]; // HF: cumsum(mask) - 1, 1 at padding
    const prefill = tf.tidy(() => {
      const { hidden } = model.forward({
        inputsEmbeds: model.embed(
          tf.tensor2d([rowA, [...new Array<number>(pad).fill(0), ...rowB]], undefined, 'int32'),
        ),
        attentionMask: tf.tensor2d(mask, undefined, 'int32'),
        positionIds: tf.tensor2d(positions, undefined, 'int32'),
        cache,
      });
      return model.lmHead(hidden).dataSync();
    });
    const step = tf.tidy(() => {
      const { hidden } = model.forward({
        inputsEmbeds: model.embed(tf.tensor2d([[ids[7]], [ids[7]]], undefined, 'int32')),
        attentionMask: tf.tensor2d(
          mask.map((m) => [...m, 1]),
          undefined,
          'int32',
        ),
        positionIds: tf.tensor2d([[7], [4]], undefined, 'int32'),
        cache,
      });
      return model.lmHead(hidden).dataSync();
    });
    cache.dispose();
    const wantA = fullLogits([...rowA, ids[7]]);
    const wantB = fullLogits([...rowB, ids[7]]);
    const close = (got: ArrayLike<number>, want: ArrayLike<number>) =>
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
    const T = rowA.length;
    close(prefill.subarray(0, T * V), wantA.subarray(0, T * V));
    close(prefill.subarray((T + pad) * V, 2 * T * V), wantB.subarray(0, rowB.length * V));
    close(step.subarray(0, V), wantA.subarray(T * V));
    close(step.subarray(V), wantB.subarray(rowB.length * V));
  });
});
