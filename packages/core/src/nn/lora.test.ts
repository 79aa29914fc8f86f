// LoRA against plain-JS float64 references: the branch output, the merge (W + α/r·BA), gradients by finite
// differences, dropout reproducibility, and PEFT adapter files round-tripped onto a fresh base model.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { readSafetensorsHeader } from '../io/safetensors-read.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { computeGradients } from '../optim/gradients.js';
import { Initializer } from './init.js';
import { Linear } from './linear.js';
import {
  applyLora,
  type LoraBranch,
  loadLoraAdapter,
  loraLinears,
  mergeLora,
  saveLoraAdapter,
} from './lora.js';
import { Module } from './module.js';
import { Rng } from './rng.js';

const tinyLlama = () =>
  parseLlamaConfig({
    model_type: 'llama',
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 32,
  });

const IDS = [[3, 7, 1, 22, 9, 31, 4, 15]];

function logits(model: LlamaForCausalLM): Float32Array {
  return tf.tidy(() => {
    const ids = tf.tensor2d(IDS, undefined, 'int32');
    const { hidden } = model.forward({ inputsEmbeds: model.embed(ids) });
    return model.lmHead(hidden).dataSync() as Float32Array;
  });
}

/** Fill every lora_B with noise so the branches contribute (B starts at zero). */
function randomizeLoraB(model: LlamaForCausalLM, seed: number): void {
  const rng = new Rng(seed);
  for (const [, , branch] of loraLinears(model)) {
    const w = branch.loraB.weight;
    tf.tidy(() => w.assign(tf.tensor2d(rng.normal(w.size, 0.2), w.shape as [number, number])));
  }
}

/** One Linear under the path `proj`. */
class Holder extends Module {
  readonly proj: Linear;
  constructor(inF: number, outF: number, seed: number, std: number) {
    super();
    this.proj = this.module('proj', new Linear(inF, outF, { init: new Initializer({ seed, std }) }));
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'vistune-lora-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('applyLora', () => {
  it('wraps the matched Linears with PEFT names, freezes their base, and starts as the base model', () => {
    const model = new LlamaForCausalLM(tinyLlama(), { seed: 3 });
    const before = logits(model);
    const applied = applyLora(model, {
      r: 4,
      alpha: 8,
      targets: ['*.q_proj', 'model.layers.1.mlp.down_proj'],
      seed: 1,
    });
    expect(applied.paths).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.mlp.down_proj',
    ]);
    const names = model.namedParameters().map(([n]) => n);
    expect(names).toContain('model.layers.0.self_attn.q_proj.weight');
    expect(names).toContain('model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(names).toContain('model.layers.1.mlp.down_proj.lora_B.weight');
    const trainable = model
      .namedParameters()
      .filter(([, p]) => p.trainable)
      .map(([n]) => n);
    // Only the wrapped Linears' base weights are frozen by applyLora; LoRA weights are trainable.
    expect(trainable.filter((n) => n.includes('lora_'))).toHaveLength(6);
    expect(trainable).not.toContain('model.layers.0.self_attn.q_proj.weight');
    expect(trainable).toContain('model.layers.0.self_attn.k_proj.weight');
    // A ~ U(-1/√in, 1/√in) (PEFT's kaiming_uniform a=√5), B = 0: the output is unchanged.
    const a = model.stateDict().get('model.layers.1.mlp.down_proj.lora_A.weight')!.dataSync() as Float32Array;
    const bound = 1 / Math.sqrt(24);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeGreaterThan((0.6 * (bound * bound)) / 3);
    expect(variance).toBeLessThan((1.4 * (bound * bound)) / 3);
    expect(maxAbsDiff(logits(model), before)).toBe(0);
    model.dispose();
  });

  it('matches y = x Wᵀ + b + α/r · (x Aᵀ) Bᵀ computed in float64', () => {
    const holder = new Holder(5, 3, 2, 0.5);
    const lin = holder.proj;
    tf.tidy(() => lin.bias!.assign(tf.tensor1d([0.1, -0.2, 0.3])));
    expect(applyLora(holder, { r: 2, alpha: 6, targets: ['proj'], seed: 4 }).paths).toEqual(['proj']);
    const branch = lin.branch as LoraBranch;
    tf.tidy(() => branch.loraB.weight.assign(tf.tensor2d([0.3, -0.1, 0.2, 0.5, -0.4, 0.25], [3, 2])));
    const x = [
      [0.5, -1, 2, 0.25, -0.75],
      [1, 0.5, -0.5, 0, 1.5],
    ];
    const y = tf.tidy(() => lin.forward(tf.tensor2d(x)).arraySync() as number[][]);
    const W = lin.weight.arraySync();
    const b = lin.bias!.arraySync();
    const A = branch.loraA.weight.arraySync();
    const B = branch.loraB.weight.arraySync();
    for (let i = 0; i < 2; i++) {
      const ax = A.map((row) => row.reduce((s, v, k) => s + v * x[i][k], 0));
      for (let o = 0; o < 3; o++) {
        const base = W[o].reduce((s, v, k) => s + v * x[i][k], b[o]);
        const lora = (6 / 2) * B[o].reduce((s, v, k) => s + v * ax[k], 0);
        expect(y[i][o]).toBeCloseTo(base + lora, 5);
      }
    }
    holder.dispose();
  });

  it('a pattern that matches no Linear is an error listing module names', () => {
    const model = new LlamaForCausalLM(tinyLlama());
    expect(() => applyLora(model, { r: 2, alpha: 4, targets: ['*.q_proj', '*.query'] })).toThrow(
      /"\*\.query" matches no Linear module.*model\.layers\.0\.self_attn\.q_proj/,
    );
    expect(loraLinears(model)).toHaveLength(0);
    expect(() => applyLora(model, { r: 0, alpha: 4, targets: ['*'] })).toThrow(
      /r must be a positive integer/,
    );
    model.dispose();
  });

  it('gradients reach lora_A and lora_B only, and match finite differences', () => {
    const holder = new Holder(4, 3, 5, 0.5);
    const lin = holder.proj;
    applyLora(holder, { r: 2, alpha: 2, targets: ['*'], seed: 6 });
    const branch = lin.branch as LoraBranch;
    tf.tidy(() => branch.loraB.weight.assign(tf.tensor2d([0.2, -0.3, 0.1, 0.4, -0.2, 0.3], [3, 2])));
    const x = tf.tensor2d([
      [0.3, -0.6, 0.9, 0.1],
      [-0.4, 0.2, 0.5, -0.7],
    ]);
    const loss = () => tf.sum(tf.square(lin.forward(x))) as tf.Scalar;
    const { grads } = computeGradients(loss, lin.namedParameters());
    expect([...grads.keys()].sort()).toEqual(['lora_A.weight', 'lora_B.weight']);
    for (const [name, v] of [
      ['lora_A.weight', branch.loraA.weight],
      ['lora_B.weight', branch.loraB.weight],
    ] as const) {
      const g = grads.get(name)!.dataSync();
      const values = v.dataSync().slice();
      for (let i = 0; i < values.length; i++) {
        const at = (delta: number) => {
          const moved = values.slice();
          moved[i] += delta;
          tf.tidy(() => v.assign(tf.tensor(moved, v.shape) as tf.Tensor2D));
          return tf.tidy(() => loss().dataSync()[0]);
        };
        const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
        tf.tidy(() => v.assign(tf.tensor(values, v.shape) as tf.Tensor2D));
        expect(g[i]).toBeCloseTo(numeric, 2);
      }
    }
    tf.dispose([...grads.values(), x]);
    holder.dispose();
  });

  it('dropout is active in training only and replays from the stream position', () => {
    const holder = new Holder(32, 8, 1, 0.02);
    const lin = holder.proj;
    const applied = applyLora(holder, { r: 4, alpha: 4, dropout: 0.5, targets: ['*'], seed: 9 });
    const branch = lin.branch as LoraBranch;
    tf.tidy(() => branch.loraB.weight.assign(tf.ones([8, 4])));
    const x = tf.ones([2, 32]);
    const run = () => tf.tidy(() => lin.forward(x).dataSync().slice());
    const evalOut = run();
    expect(maxAbsDiff(run(), evalOut)).toBe(0);
    holder.train();
    const first = run();
    const second = run();
    expect(applied.dropout.calls).toBe(2);
    expect(maxAbsDiff(first, second)).toBeGreaterThan(1e-3); // fresh mask each call
    expect(maxAbsDiff(first, evalOut)).toBeGreaterThan(1e-3);
    applied.dropout.calls = 0; // what a resumed trainer restores
    expect(maxAbsDiff(run(), first)).toBe(0);
    x.dispose();
    holder.dispose();
  });
});

describe('mergeLora', () => {
  it('merged logits equal unmerged logits and W becomes W + α/r · B A', () => {
    const model = new LlamaForCausalLM(tinyLlama(), { seed: 4 });
    const wBefore = model
      .stateDict()
      .get('model.layers.0.self_attn.v_proj.weight')!
      .arraySync() as number[][];
    applyLora(model, { r: 3, alpha: 12, targets: ['model.layers.*_proj'], seed: 2 });
    randomizeLoraB(model, 8);
    const sd = model.stateDict();
    const A = sd.get('model.layers.0.self_attn.v_proj.lora_A.weight')!.arraySync() as number[][];
    const B = sd.get('model.layers.0.self_attn.v_proj.lora_B.weight')!.arraySync() as number[][];
    const unmerged = logits(model);
    const paramsBefore = tf.memory().numTensors;
    const merged = mergeLora(model);
    expect(merged).toHaveLength(14); // 7 projections × 2 layers
    expect(model.namedParameters().some(([n]) => n.includes('lora_'))).toBe(false);
    expect(tf.memory().numTensors).toBe(paramsBefore - 28); // the A and B variables are freed
    expect(maxAbsDiff(logits(model), unmerged)).toBeLessThan(1e-5);
    const W = model.stateDict().get('model.layers.0.self_attn.v_proj.weight')!.arraySync() as number[][];
    for (let o = 0; o < W.length; o++)
      for (let i = 0; i < W[0].length; i++) {
        const ba = B[o].reduce((s, v, k) => s + v * A[k][i], 0);
        expect(W[o][i]).toBeCloseTo(wBefore[o][i] + 4 * ba, 5);
      }
    model.dispose();
  });
});

describe('PEFT adapter files', () => {
  it('saves PEFT names and config, and loads onto a fresh base to the same logits', async () => {
    const model = new LlamaForCausalLM(tinyLlama(), { seed: 11 });
    applyLora(model, { r: 2, alpha: 4, dropout: 0.05, targets: ['*.q_proj', '*.v_proj'], seed: 3 });
    randomizeLoraB(model, 5);
    const expected = logits(model);
    const out = join(dir, 'adapter');
    await saveLoraAdapter(model, out, { baseModel: 'tiny-llama' });
    const header = await readSafetensorsHeader(join(out, 'adapter_model.safetensors'));
    expect([...header.tensors.keys()].sort()).toEqual(
      ['0', '1']
        .flatMap((l) => ['q_proj', 'v_proj'].map((p) => `base_model.model.model.layers.${l}.self_attn.${p}`))
        .flatMap((m) => [`${m}.lora_A.weight`, `${m}.lora_B.weight`])
        .sort(),
    );
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 4,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'v_proj'],
      bias: 'none',
      base_model_name_or_path: 'tiny-llama',
    });

    const fresh = new LlamaForCausalLM(tinyLlama(), { seed: 11 });
    const base = logits(fresh);
    const loaded = await loadLoraAdapter(fresh, out);
    expect(loaded.paths).toHaveLength(4);
    expect(loaded.config).toEqual({ r: 2, alpha: 4, dropout: 0.05 });
    expect(maxAbsDiff(logits(fresh), expected)).toBe(0);
    expect(maxAbsDiff(expected, base)).toBeGreaterThan(1e-4); // the adapter changes the model
    model.dispose();
    fresh.dispose();
  });

  it('writes full module names when short names would select more Linears, and maps checkpoint names', async () => {
    const model = new LlamaForCausalLM(tinyLlama(), { seed: 12 });
    applyLora(model, { r: 2, alpha: 2, targets: ['model.layers.1.self_attn.q_proj'] });
    randomizeLoraB(model, 6);
    const out = join(dir, 'adapter-mapped');
    const checkpointName = (n: string) => `language_model.${n}`;
    await saveLoraAdapter(model, out, { checkpointName });
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config.target_modules).toEqual(['language_model.model.layers.1.self_attn.q_proj']);
    const header = await readSafetensorsHeader(join(out, 'adapter_model.safetensors'));
    expect(
      header.tensors.has('base_model.model.language_model.model.layers.1.self_attn.q_proj.lora_B.weight'),
    ).toBe(true);
    const fresh = new LlamaForCausalLM(tinyLlama(), { seed: 12 });
    await expect(loadLoraAdapter(fresh, out)).rejects.toThrow(/fit no Linear|no tensor fits.*checkpointName/);
    const loaded = await loadLoraAdapter(fresh, out, { checkpointName });
    expect(loaded.paths).toEqual(['model.layers.1.self_attn.q_proj']);
    expect(maxAbsDiff(logits(fresh), logits(model))).toBe(0);
    model.dispose();
    fresh.dispose();
  });
});
