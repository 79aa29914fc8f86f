// The trainer on a tiny real MultimodalModel: two LLaVA-like stages (projector, then projector + LoRA),
// what each stage trains, the lr schedule, accumulation = big batch, flat tensor count, run-folder files,
// and a NaN input stopping the run without saving.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { loadSafetensors } from '../io/safetensors-read.js';
import { parseRecipe } from './recipe.js';
import {
  learnRecipe,
  ToyBatchSource,
  tinyMultimodalModel,
  toyBatch,
  toyRecipe,
  toySamples,
} from './test-utils.js';
import { NonFiniteLossError, type StepMetrics, Trainer, type TrainerEvent } from './trainer.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'vistune-trainer-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const snapshot = (m: { stateDict(): Map<string, tf.Variable> }) =>
  new Map([...m.stateDict()].map(([n, p]) => [n, p.dataSync().slice() as Float32Array]));

/** HF get_cosine_schedule_with_warmup, written out for the check. */
function cosineLr(base: number, step0: number, total: number, warmup: number): number {
  if (step0 < warmup) return (base * step0) / Math.max(1, warmup);
  const progress = (step0 - warmup) / Math.max(1, total - warmup);
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}

describe('Trainer', () => {
  it('runs projector alignment then LoRA instruction tuning, merging LoRA and writing the run folder', async () => {
    const output = join(root, 'two-stage');
    const recipe = toyRecipe(output);
    const model = tinyMultimodalModel(1);
    const start = snapshot(model);
    const steps: StepMetrics[] = [];
    const events: TrainerEvent[] = [];
    const tensorsAtStep: number[] = [];
    const trainableAtStep: string[][] = [];
    const trainer = new Trainer({
      model,
      recipe,
      data: (_stage, i) => new ToyBatchSource(toySamples(10), recipe.data.batchSize, i + 1),
      onStep: (m) => {
        steps.push(m);
        tensorsAtStep.push(tf.memory().numTensors);
        trainableAtStep.push(model.trainableParameters().map(([n]) => n));
      },
      onEvent: (e) => events.push(e),
    });
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    expect(result.step).toBe(7); // 3 + ceil(1.5 epochs × 5 batches / accumulate 2)
    expect(steps.map((s) => s.stage)).toEqual([
      'align',
      'align',
      'align',
      'instruct',
      'instruct',
      'instruct',
      'instruct',
    ]);

    // Stage 1 trains the projector only; stage 2 the projector and the LoRA matrices, never the LLM base.
    expect(trainableAtStep[0].every((n) => n.startsWith('modalities.image.adapter.'))).toBe(true);
    expect(trainableAtStep[0]).toHaveLength(4);
    expect(trainableAtStep[3].filter((n) => n.includes('.lora_'))).toHaveLength(2 * 7 * 2);
    expect(trainableAtStep[3].some((n) => n.startsWith('llm.') && !n.includes('.lora_'))).toBe(false);

    // No tensor growth from step to step within a stage.
    expect(tensorsAtStep[2]).toBe(tensorsAtStep[1]);
    expect(tensorsAtStep[6]).toBe(tensorsAtStep[4]);

    // Lr per step: cosine with warmup over each stage's own steps (stage 1: ceil(3 × 0.34) = 2 warmup steps).
    steps.slice(0, 3).forEach((s, k) => {
      expect(s.lr).toBeCloseTo(cosineLr(1e-2, k, 3, 2), 12);
    });
    steps.slice(3).forEach((s, k) => {
      expect(s.lr).toBeCloseTo(cosineLr(2e-2, k, 4, 1), 12);
    });
    for (const s of steps) {
      expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
      expect(s.gradNorm).toBeGreaterThan(0);
      expect(s.tokens).toBeGreaterThan(0);
      expect(s.eta).toBeGreaterThanOrEqual(0);
    }
    expect(steps[6].eta).toBe(0);
    expect(steps[6].epoch).toBeCloseTo(8 / 5, 12);

    // LoRA was merged: the LLM's projection weights moved, its embeddings and norms did not, no lora_ names remain.
    const end = snapshot(model);
    expect([...end.keys()]).toEqual([...start.keys()]);
    const moved = (n: string) => start.get(n)!.some((v, i) => v !== end.get(n)![i]);
    expect(moved('llm.model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(moved('modalities.image.adapter.linear_1.weight')).toBe(true);
    expect(moved('llm.model.embed_tokens.weight')).toBe(false);
    expect(moved('llm.model.norm.weight')).toBe(false);
    expect(moved('modalities.image.encoder.embed.weight')).toBe(false);
    expect(events.find((e) => e.type === 'lora-merged')).toMatchObject({ stage: 'instruct', modules: 14 });

    // Run folder: metrics.jsonl (one line per step), loss.html (inline SVG, nothing fetched), adapter, model.
    const lines = (await readFile(join(output, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).loss)).toEqual(steps.map((s) => s.loss));
    const html = await readFile(join(output, 'loss.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html.match(/<polyline/g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|<link|src=/);
    const adapterFiles = await readdir(join(output, 'adapters', 'instruct'));
    expect(adapterFiles.sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'non_lora_trainables.safetensors',
    ]);

    // The final model folder holds every weight as trained; loaded into a fresh model it gives the same loss.
    expect(result.modelDir).toBe(join(output, 'model'));
    const saved = await loadSafetensors(join(output, 'model', 'model.safetensors'));
    const fresh = tinyMultimodalModel(1);
    fresh.loadStateDict(saved);
    tf.dispose([...saved.values()]);
    const batch = toyBatch(toySamples(4));
    const lossOf = (m: typeof model) =>
      tf.tidy(() => m.forward(batch, { logits: false }).loss!.dataSync()[0]);
    expect(lossOf(fresh)).toBe(lossOf(model));
    tf.dispose([batch.inputIds, batch.attentionMask!, batch.labels!, ...batch.media!.image.flat()]);
    fresh.dispose();
    model.dispose();
  }, 30_000);

  it('learns: fine-tuning projector and LLM on the toy captions halves the loss in 30 steps', async () => {
    const recipe = learnRecipe(join(root, 'learn'));
    const model = tinyMultimodalModel(1);
    const losses: number[] = [];
    await new Trainer({
      model,
      recipe,
      data: () => new ToyBatchSource(toySamples(16), 4, 1),
      onStep: (m) => losses.push(m.loss),
    }).run();
    const tail = losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    expect(losses[0]).toBeGreaterThan(Math.log(48) - 0.5); // starts near chance over the vocabulary
    expect(tail).toBeLessThan(0.5 * losses[0]);
    model.dispose();
  }, 30_000);

  it('accumulating 2 micro-batches of 1 equals one batch of 2 (token-weighted)', async () => {
    const samples = toySamples(4); // caption lengths differ, so equal weights would not match
    const run = async (batchSize: number, accumulate: number) => {
      const recipe = parseRecipe({
        model: 'unused',
        data: { train: 'x', batchSize },
        stages: [
          {
            name: 's',
            train: ['modalities.image.adapter.*', 'llm.model.layers.1.*'],
            lr: 1e-2,
            steps: 2,
            schedule: 'constant',
          },
        ],
        optimizer: { accumulate, clip: null },
        checkpoint: { every: 0 },
        output: join(root, `accumulate-${batchSize}`),
      });
      const model = tinyMultimodalModel(2);
      const losses: number[] = [];
      await new Trainer({
        model,
        recipe,
        data: () => new ToyBatchSource(samples, batchSize, 0),
        onStep: (m) => losses.push(m.loss),
      }).run();
      const weights = snapshot(model);
      model.dispose();
      return { losses, weights };
    };
    // Same shuffle seed and epoch: batches of 2 are exactly consecutive pairs of the batches of 1.
    const big = await run(2, 1);
    const small = await run(1, 2);
    expect(small.losses[0]).toBeCloseTo(big.losses[0], 5);
    expect(small.losses[1]).toBeCloseTo(big.losses[1], 5);
    for (const [name, w] of big.weights) {
      const other = small.weights.get(name)!;
      const diff = w.reduce((m, v, i) => Math.max(m, Math.abs(v - other[i])), 0);
      expect(diff, name).toBeLessThan(1e-5);
    }
  }, 30_000);

  it('a NaN loss stops the run with a clear error and saves nothing after the last good checkpoint', async () => {
    const output = join(root, 'nan');
    const recipe = parseRecipe({
      model: 'unused',
      data: { train: 'x', batchSize: 2 },
      stages: [{ name: 'align', train: ['modalities.image.adapter.*'], lr: 1e-2, steps: 4 }],
      optimizer: { accumulate: 1 },
      checkpoint: { every: 2, keep: 3 },
      output,
    });
    const samples = toySamples(8);
    samples[5] = { ...samples[5], noise: Number.NaN }; // third batch (unshuffled order below)
    const model = tinyMultimodalModel(3);
    const source = new ToyBatchSource(samples, 2, 0);
    // Seed 0 shuffles; find where the bad sample lands to know which step must fail.
    const order = (source as unknown as { order(): number[] }).order();
    const badStep = Math.floor(order.indexOf(5) / 2) + 1;
    const error = await new Trainer({ model, recipe, data: () => source }).run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect((error as Error).message).toMatch(
      new RegExp(`stage "align" step ${badStep}: the loss \\(NaN\\) is not finite`),
    );
    const entries = (await readdir(join(output, 'checkpoints'))).sort();
    expect(entries).toEqual(badStep > 2 ? ['checkpoint-2'] : []);
    model.dispose();
  });

  it('a train pattern that matches nothing names the recipe field', async () => {
    const recipe = parseRecipe(
      {
        model: 'unused',
        data: { train: 'x' },
        stages: [{ name: 'a', train: ['modalities.image.projector.*'], lr: 1e-3, steps: 1 }],
        output: join(root, 'typo'),
      },
      { source: 'typo.yaml' },
    );
    const model = tinyMultimodalModel(0);
    await expect(
      new Trainer({ model, recipe, data: () => new ToyBatchSource(toySamples(2), 1) }).run(),
    ).rejects.toThrow(
      /typo\.yaml: stages\[0\]\.train\[0\]: "modalities\.image\.projector\.\*" matches no parameter.*modalities\.image\.adapter\.linear_1\.weight/s,
    );
    model.dispose();
  });
});
