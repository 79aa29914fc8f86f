import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { initBackend } from '../backend/index.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import type {
  Adapter,
  EncodeOptions,
  EncoderOutput,
  FeatureLayout,
  ModalityEncoder,
} from '../multimodal/types.js';
import { Initializer } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { register as registerCore } from '../register.js';
import { createRegistry } from '../registry/registry.js';
import type { Registry } from '../registry/types.js';
import { createModel, loadPretrained } from './load.js';

/** Points [P, 3] → one Linear per point: a stand-in for a plugin's point-cloud encoder. */
class PointEncoder extends Module implements ModalityEncoder {
  readonly numHiddenStates = 2;
  readonly proj: Linear;
  constructor(
    readonly hiddenSize: number,
    seed: number,
  ) {
    super();
    this.proj = this.module('proj', new Linear(3, hiddenSize, { init: new Initializer({ seed, std: 0.5 }) }));
  }
  featureLayout(itemShape: readonly number[]): FeatureLayout {
    return { tokens: itemShape[0], prefixTokens: 0 };
  }
  forward(batch: tf.Tensor, opts: EncodeOptions = {}): EncoderOutput {
    const h = this.proj.forward(batch) as tf.Tensor3D;
    const states = [h, tf.tanh(h) as tf.Tensor3D];
    return {
      hiddenStates: (opts.hiddenStates ?? [-1]).map((i) => states[i < 0 ? states.length + i : i]),
      layout: this.featureLayout(batch.shape.slice(1)),
    };
  }
}

/** Mean-pools the points into `slots` tokens and projects them. */
class PoolAdapter extends Module implements Adapter {
  readonly proj: Linear;
  constructor(
    readonly inDim: number,
    readonly outDim: number,
    seed: number,
  ) {
    super();
    this.proj = this.module('proj', new Linear(inDim, outDim, { init: new Initializer({ seed, std: 0.5 }) }));
  }
  numSlots(): number {
    return 1;
  }
  forward(features: tf.Tensor3D): tf.Tensor3D {
    return this.proj.forward(tf.mean(features, 1, true)) as tf.Tensor3D;
  }
}

/** What a third-party plugin registers: a media kind, an encoder and an adapter. */
function registerPointsPlugin(registry: Registry): void {
  registry.add({
    kind: 'media',
    name: 'points',
    about: 'point clouds',
    schema: z.object({}),
    create: () => ({ name: 'points', marker: '<points>', extensions: ['.ply'] }),
  });
  registry.add({
    kind: 'encoder',
    name: 'point_mlp',
    about: 'one Linear per point',
    hf: { types: ['point_mlp_model'] },
    schema: z.object({ hidden: z.number().int().default(6), seed: z.number().int().default(0) }),
    create: (c) => new PointEncoder(c.hidden, c.seed),
  });
  registry.add({
    kind: 'adapter',
    name: 'pool',
    about: 'mean pool + Linear',
    schema: z.object({
      inDim: z.number().int(),
      outDim: z.number().int(),
      seed: z.number().int().default(0),
    }),
    create: (c) => new PoolAdapter(c.inDim, c.outDim, c.seed),
  });
}

const TEXT = {
  model_type: 'llama',
  vocab_size: 32,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  max_position_embeddings: 32,
};

function registry(): Registry {
  const r = createRegistry();
  registerCore(r.withOrigin('@vistune/core'));
  registerPointsPlugin(r.withOrigin('vistune-test-only-points'));
  return r;
}

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
  dir = await mkdtemp(join(tmpdir(), 'vistune-pipeline-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function logits(model: Awaited<ReturnType<typeof createModel>>): number[] {
  const ids = tf.tensor2d([[1, 30, 5, 6]], [1, 4], 'int32');
  const points = tf.tensor2d([
    [0.1, 0.2, 0.3],
    [0.5, -0.1, 0.2],
  ]);
  const out = model.forward({ inputIds: ids, media: { points: [[points]] } });
  const values = Array.from(out.logits!.dataSync());
  tf.dispose([ids, points, out.logits]);
  return values;
}

describe('model pipeline', () => {
  it("builds a composition of a plugin's parts from one config, saves it with its plugins, and loads it back", async () => {
    const r = registry();
    const model = await createModel(
      {
        model_type: 'vistune',
        llm: { type: 'llama', config: TEXT },
        modalities: {
          points: { placeholder_token_id: 30, encoder: { type: 'point_mlp' }, adapter: { type: 'pool' } },
        },
        vistune_chat: { template: 'plain', system_prompt: '' },
      },
      r,
      { seed: 3 },
    );
    expect(model.family?.name).toBe('vistune');
    expect(model.composition?.plugins).toEqual(['vistune-test-only-points']);
    expect(model.composition?.modalities.points.adapter).toEqual({
      type: 'pool',
      inDim: 6,
      outDim: 8,
      seed: 5,
    });
    const before = logits(model);
    const out = join(dir, 'points-model');
    await model.save(out);
    model.dispose();
    const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(saved.model_type).toBe('vistune');
    expect(saved.vistune_plugins).toEqual(['vistune-test-only-points']);
    expect(saved.vistune_chat).toEqual({ template: 'plain', system_prompt: '' });
    expect(saved.modalities.points.media).toBe('points');

    const loaded = await loadPretrained(out, registry());
    expect(logits(loaded)).toEqual(before);
    expect(loaded.composition?.chat).toEqual({ template: 'plain', systemPrompt: '' });
    loaded.dispose();
  });

  it('a saved model whose plugin is not registered names the plugin it cannot load', async () => {
    const r = createRegistry();
    registerCore(r.withOrigin('@vistune/core'));
    await expect(loadPretrained(join(dir, 'points-model'), r)).rejects.toThrow(
      /cannot load plugin 'vistune-test-only-points'/,
    );
  });

  it('text-only folders load as a model with no modalities and save in their HF layout', async () => {
    const r = registry();
    const model = await createModel(TEXT, r, { seed: 1 });
    expect(model.family?.name).toBe('causal_lm');
    expect(model.checkpointName('llm.model.norm.weight')).toBe('model.norm.weight');
    const out = join(dir, 'text-model');
    await model.save(out);
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const a = model.forward({ inputIds: ids }).logits!;
    const loaded = await loadPretrained(out, r);
    const b = loaded.forward({ inputIds: ids }).logits!;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).model_type).toBe('llama');
    tf.dispose([ids, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it('names the file, the unknown model_type and the fix', async () => {
    const bad = join(dir, 'bad');
    await rm(bad, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(bad));
    await writeFile(join(bad, 'config.json'), JSON.stringify({ model_type: 'blip-2' }));
    await expect(loadPretrained(bad, registry())).rejects.toThrow(
      /bad\/config\.json: model_type 'blip-2' is not a registered model family \(multimodal: llava, vistune; text-only: llama, mistral, qwen2\).*--plugin/,
    );
    await writeFile(join(bad, 'config.json'), 'null');
    await expect(loadPretrained(bad, registry())).rejects.toThrow(/config\.json holds null/);
  });

  it("LLaVA configs find a plugin's encoder by vision_config.model_type, and the decoder comes from the llm entry with the same init", async () => {
    const r = registry();
    const model = await createModel(
      {
        model_type: 'llava',
        image_token_index: 30,
        mm_projector_type: 'pool',
        text_config: TEXT,
        vision_config: { model_type: 'point_mlp_model', hidden: 6 },
      },
      r,
      { seed: 4 },
    );
    expect(model.family?.name).toBe('llava');
    expect(model.composition?.modalities.image.encoder).toMatchObject({ type: 'point_mlp', hidden: 6 });
    expect(model.composition?.plugins).toEqual(['vistune-test-only-points']);
    const direct = new LlamaForCausalLM(parseLlamaConfig(TEXT), { seed: 4 });
    const ours = new Map(model.llm.namedParameters());
    for (const [name, p] of direct.namedParameters())
      expect(Array.from(ours.get(name)!.dataSync()), name).toEqual(Array.from(p.dataSync()));
    direct.dispose();
    model.dispose();
  });

  it('rejects a composition whose media kind nobody registered, naming the field', async () => {
    const r = registry();
    await expect(
      createModel(
        {
          model_type: 'vistune',
          llm: { type: 'llama', config: TEXT },
          modalities: {
            audio: { placeholder_token_id: 31, encoder: { type: 'point_mlp' }, adapter: { type: 'pool' } },
          },
        },
        r,
      ),
    ).rejects.toThrow(/modalities\.audio\.media: no media kind 'audio' is registered \(known: points\)/);
  });
});
