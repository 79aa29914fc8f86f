#!/usr/bin/env node
// Steps per minute of demo-sized Trainer steps with parallel.workers 1 or N (packages/core/src/train/parallel.ts):
// the demo's LLaVA (ViT 64-d × 2, LLaMA 128-d × 4, 302 tokens), synthetic batches of 48 tokens with 4 image tokens.
// It is the worker replicas' module too: each worker imports this file and calls benchModel.
// usage: node tools/data-parallel-bench.mjs --workers 2 --batch 16 --accumulate 2 [--steps 20]
// Needs `pnpm build` first. Prints one JSON line (mean step after 3 warm-up steps, cores used, load average).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { createVistuneRegistry } from '../apps/cli/dist/index.js';
import { createModel, initBackend, parseRecipe, Trainer, tf } from '../packages/core/dist/index.js';

const IMAGE_TOKEN = 301;
const CONFIG = {
  model_type: 'llava',
  image_token_index: IMAGE_TOKEN,
  vision_feature_layer: -1,
  vision_feature_select_strategy: 'default',
  projector_hidden_act: 'gelu',
  multimodal_projector_bias: true,
  text_config: {
    model_type: 'llama',
    vocab_size: 302,
    hidden_size: 128,
    intermediate_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 3,
  },
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_channels: 3,
    image_size: 64,
    patch_size: 32,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-5,
  },
};
const TRAINED = ['llm.*', 'modalities.image.adapter.*'];

/** The model every replica builds (values are copied from the main thread). */
export async function benchModel(seed) {
  return createModel(CONFIG, await createVistuneRegistry({ discover: false }), { seed });
}

/** The model with TRAINED trainable, in train mode, and its trainable parameters (tools/core-scaling, kernel-profile). */
export async function trainableBenchModel(seed = 0) {
  const model = await benchModel(seed);
  model.trainOnly(TRAINED);
  model.train();
  return { model, params: model.namedParameters().filter(([, p]) => p.trainable) };
}

/** Synthetic batch number `index` of B samples: BOS, 4 image tokens, 43 text ids, the last 11 supervised. */
export function syntheticBatch(B, index = 0) {
  const T = 48;
  const ids = new Int32Array(B * T);
  const labels = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const t = i % T;
    const id = t === 0 ? 1 : t <= 4 ? IMAGE_TOKEN : 10 + ((index * 977 + i * 131) % 280);
    ids[i] = id;
    labels[i] = t > T - 12 ? id : -100;
  }
  return {
    inputIds: tf.tensor2d(ids, [B, T], 'int32'),
    attentionMask: tf.ones([B, T], 'int32'),
    labels: tf.tensor2d(labels, [B, T], 'int32'),
    media: { image: Array.from({ length: B }, () => [tf.randomUniform([3, 64, 64], -1, 1)]) },
  };
}

/** Endless synthetic batches (syntheticBatch 0, 1, 2, …). */
class SyntheticBatches {
  length = 1000;
  index = 0;
  constructor(batchSize) {
    this.batchSize = batchSize;
  }
  async next() {
    return syntheticBatch(this.batchSize, this.index++);
  }
  state() {
    return { index: this.index };
  }
  restore() {}
}

async function main() {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '1' },
      steps: { type: 'string', default: '20' },
      batch: { type: 'string', default: '16' },
      accumulate: { type: 'string', default: '1' },
    },
  });
  const workers = Number(values.workers);
  const steps = Number(values.steps);
  const backend = await initBackend({ backend: 'wasm', quiet: true });
  const model = await benchModel(0);
  model.trainOnly(TRAINED);
  const batchSize = Number(values.batch);
  const recipe = parseRecipe(
    {
      model: 'unused',
      data: { train: 'unused', batchSize },
      stages: [
        {
          name: 'bench',
          train: TRAINED,
          lr: 1e-3,
          steps,
          schedule: 'constant',
          accumulate: Number(values.accumulate),
        },
      ],
      optimizer: { weightDecay: 0, clip: 1.0 },
      checkpoint: { every: 0, keep: 1 },
      parallel: { workers },
      output: mkdtempSync(join(tmpdir(), 'vistune-dp-bench-')),
    },
    { source: 'data-parallel-bench' },
  );
  const times = [];
  let cpuStart;
  let wallStart;
  await new Trainer({
    model,
    recipe,
    data: (stage) => new SyntheticBatches(stage.batchSize ?? batchSize),
    replica: { module: import.meta.url, exportName: 'benchModel', options: 0 },
    onStep: (m) => {
      times.push(m.stepSeconds);
      if (times.length === 3) {
        cpuStart = process.cpuUsage();
        wallStart = performance.now();
      }
    },
    saveModel: async () => {},
  }).run();
  const cpu = process.cpuUsage(cpuStart);
  const steady = times.slice(3);
  const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
  const result = {
    workers,
    batch: batchSize,
    accumulate: Number(values.accumulate),
    steps,
    meanStepMs: +(1000 * mean).toFixed(1),
    stepsPerMin: +(60 / mean).toFixed(1),
    coresUsed: +((cpu.user + cpu.system) / 1000 / (performance.now() - wallStart)).toFixed(2),
    backend: backend.detail,
    load: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
  console.log(JSON.stringify(result));
}

// Run only as the entry script (worker replicas and tools/core-scaling.mjs import it for benchModel).
if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
