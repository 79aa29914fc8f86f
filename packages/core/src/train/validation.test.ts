// Validation in the trainer on the toy model (the caption's tokens depend on the image's class): held-out loss
// every N steps equal to a loss computed by hand, a shuffled-media control clearly above it once the model reads
// its images, no effect on training, timestamps and curves; the best checkpoint kept out of pruning, early
// stopping, and output.model: best publishing that checkpoint's (LoRA-merged) weights.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { loadSafetensors } from '../io/safetensors-read.js';
import { listCheckpoints, type StepRecord } from './checkpoint.js';
import { parseRecipe, type Recipe } from './recipe.js';
import {
  learnRecipe,
  ToyBatchSource,
  type ToySample,
  tinyMultimodalModel,
  toyBatch,
  toySamples,
} from './test-utils.js';
import { Trainer, type TrainerEvent } from './trainer.js';
import { mediaPermutation, Validator } from './validation.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'vistune-validation-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Held-out samples: the training classes and caption lengths, other image noise. */
const heldOut: ToySample[] = toySamples(8).map((s) => ({ ...s, noise: s.noise + 500 }));
const valSource = () => new ToyBatchSource(heldOut, 4, 3);

/** The toy learning run, validated on the held-out samples. */
const validatedRecipe = (output: string, extra: Record<string, unknown> = {}): Recipe =>
  learnRecipe(output, { data: { train: 'x', val: 'held-out', batchSize: 4 }, ...extra });

async function metricsOf(output: string): Promise<StepRecord[]> {
  const text = await readFile(join(output, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepRecord);
}

describe('validation during training', () => {
  it('logs val_loss (equal to the loss computed by hand) and a shuffled-media control well above it, changing nothing', async () => {
    const output = join(root, 'val');
    const recipe = validatedRecipe(output, { validation: { every: 10, batches: 2 } });
    const model = tinyMultimodalModel(1);
    const events: TrainerEvent[] = [];
    const started = Date.now();
    const result = await new Trainer({
      model,
      recipe,
      data: () => new ToyBatchSource(toySamples(16), 4, 1),
      validationData: valSource,
      onEvent: (e) => events.push(e),
    }).run();
    expect(result).toMatchObject({ status: 'completed', reason: 'finished', step: 30 });

    const records = await metricsOf(output);
    expect(records.filter((r) => r.val_loss !== undefined).map((r) => r.step)).toEqual([10, 20, 30]);
    expect(events.filter((e) => e.type === 'validation')).toHaveLength(3);
    // Timestamps: ISO times within the run, elapsed seconds increasing.
    for (const r of records) {
      const t = Date.parse(r.time as string);
      expect(t).toBeGreaterThanOrEqual(started - 1000);
      expect(t).toBeLessThanOrEqual(Date.now());
    }
    const elapsed = records.map((r) => r.elapsed as number);
    expect(elapsed.every((e, i) => i === 0 || e > elapsed[i - 1])).toBe(true);

    // The last val_loss is the token-weighted mean LM loss of the two held-out batches, by hand, in eval mode.
    const source = valSource();
    let sum = 0;
    let tokens = 0;
    for (let b = 0; b < 2; b++) {
      const batch = (await source.next())!;
      const labels = batch.labels!.arraySync() as number[][];
      const n = labels.flatMap((row) => row.slice(1)).filter((v) => v !== -100).length;
      const loss = tf.tidy(() => model.forward(batch, { logits: false }).loss!.dataSync()[0]);
      sum += loss * n;
      tokens += n;
      tf.dispose([batch.inputIds, batch.attentionMask!, batch.labels!, ...batch.media!.image.flat()]);
    }
    const last = records.at(-1)!;
    expect(last.val_loss).toBeCloseTo(sum / tokens, 5);
    // The model learns to read the image for the class token: swapping images across samples costs clearly
    // more, and more so as training goes on (measured: gap 0.13 at step 10, 0.32 at step 30).
    const gap = (r: StepRecord) => (r.val_loss_shuffled as number) - (r.val_loss as number);
    expect(gap(last)).toBeGreaterThan(0.2);
    expect(gap(last)).toBeGreaterThan(gap(records[9]) + 0.1);

    // Validation changed nothing: the same run without it has the same losses and weights, bit for bit.
    const plain = tinyMultimodalModel(1);
    const again = await new Trainer({
      model: plain,
      recipe: learnRecipe(join(root, 'no-val')),
      data: () => new ToyBatchSource(toySamples(16), 4, 1),
    }).run();
    expect(again.metrics.map((m) => m.loss)).toEqual(result.metrics.map((m) => m.loss));
    const trained = model.stateDict();
    for (const [name, p] of plain.stateDict())
      expect(Array.from(p.dataSync()), name).toEqual(Array.from(trained.get(name)!.dataSync()));

    // loss.html draws the val curve and its control (3 points each) next to the training curve.
    const html = await readFile(join(output, 'loss.html'), 'utf8');
    expect(html).toMatch(/data-series="val_loss"/);
    expect(html).toMatch(/data-series="val_loss_shuffled"/);
    const valLine = /data-series="val_loss" [^>]*points="([^"]+)"/.exec(html)!;
    expect(valLine[1].split(' ')).toHaveLength(3);
    expect(html).toMatch(/val loss \d+\.\d{4}, media shuffled \d+\.\d{4}/);
    model.dispose();
    plain.dispose();
  }, 40_000);

  it('keeps the best checkpoint out of pruning, stops early after `patience` validations, publishes the best weights', async () => {
    const output = join(root, 'best');
    // minDelta 100: only the first validation counts as an improvement, so patience 2 stops at the third.
    const recipe = parseRecipe({
      model: 'unused',
      data: { train: 'x', val: 'held-out', batchSize: 2 },
      stages: [
        {
          name: 'tune',
          train: ['modalities.image.adapter.*'],
          lr: 2e-2,
          steps: 20,
          lora: { r: 2, alpha: 4, dropout: 0.1, targets: ['llm.model.layers.*_proj'] },
        },
      ],
      validation: { every: 3, batches: 1, patience: 2, minDelta: 100 },
      checkpoint: { every: 2, keep: 1 },
      output: { dir: output, model: 'best' },
      seed: 5,
    });
    expect(recipe.checkpoint.keepBest).toBe(true);
    const model = tinyMultimodalModel(4);
    const events: TrainerEvent[] = [];
    const result = await new Trainer({
      model,
      recipe,
      data: () => new ToyBatchSource(toySamples(10), 2, 2),
      validationData: valSource,
      onEvent: (e) => events.push(e),
    }).run();
    expect(result).toMatchObject({ status: 'completed', reason: 'early-stopping', step: 9, modelStep: 3 });
    expect(result.best).toMatchObject({ step: 3, stage: 'tune', checkpoint: 'checkpoint-3' });
    expect(events.find((e) => e.type === 'early-stop')).toMatchObject({ step: 9, patience: 2 });
    expect(events.find((e) => e.type === 'done')).toMatchObject({ from: 'best', modelStep: 3 });
    // keep: 1 pruned the periodic ones; the best (3) stays beside the final one (9).
    expect((await listCheckpoints(recipe.checkpoint.dir!)).map((c) => c.step)).toEqual([3, 9]);

    // model/ is the best checkpoint's loadable folder: LoRA folded in, and it scores the best val loss.
    const weights = await loadSafetensors(join(output, 'model', 'model.safetensors'));
    expect([...weights.keys()].some((n) => n.includes('lora_'))).toBe(false);
    const fresh = tinyMultimodalModel(0);
    fresh.loadStateDict(weights, { source: 'model/' });
    const rescored = await new Validator(valSource(), { batches: 1, shuffledControl: false, seed: 5 }).run(
      fresh,
    );
    expect(rescored.loss).toBeCloseTo(result.best!.valLoss, 5);
    const last = await loadSafetensors(join(recipe.checkpoint.dir!, 'checkpoint-9', 'model.safetensors'));
    const name = 'llm.model.layers.0.self_attn.q_proj.weight';
    expect(Array.from(last.get(name)!.dataSync())).not.toEqual(Array.from(weights.get(name)!.dataSync()));
    tf.dispose([...weights.values(), ...last.values()]);
    fresh.dispose();
    model.dispose();
  }, 40_000);

  it('validation without data.val, or keepBest without validation, is a recipe error naming the field', () => {
    const base = { model: 'm', data: { train: 'x' }, stages: [{ name: 'a', train: ['*'], lr: 1, steps: 1 }] };
    expect(() =>
      parseRecipe({ ...base, validation: { every: 5 }, output: 'o' }, { source: 'r.yaml' }),
    ).toThrow(/r\.yaml: validation: needs held-out data: add data\.val/);
    expect(() =>
      parseRecipe({ ...base, checkpoint: { keepBest: true }, output: 'o' }, { source: 'r.yaml' }),
    ).toThrow(/r\.yaml: checkpoint\.keepBest: .*add validation/);
    expect(() => parseRecipe({ ...base, output: { dir: 'o', model: 'best' } }, { source: 'r.yaml' })).toThrow(
      /r\.yaml: output\.model: .*add validation/,
    );
  });
});

describe('mediaPermutation (the shuffled-media control)', () => {
  it('gives every sample another sample’s media of the same shape, across batches of one, the same for a seed', () => {
    const batches = [0, 1, 2, 3, 4].map((i) => toyBatch([toySamples(5)[i]]));
    const partner = mediaPermutation(batches, 7);
    expect(partner.size).toBe(5);
    for (const [key, from] of partner) expect(from).not.toBe(key);
    expect(new Set(partner.values()).size).toBe(5); // a permutation
    expect([...mediaPermutation(batches, 7)]).toEqual([...partner]);
    // A sample with media of another shape has no partner and keeps its own.
    const odd = toyBatch([toySamples(1)[0]]);
    const wide = {
      ...odd,
      media: { image: [[tf.zeros([3, 6])]] },
    };
    const mixed = mediaPermutation([batches[0], batches[1], wide], 1);
    expect(mixed.has('2/0')).toBe(false);
    expect(mixed.get('0/0')).toBe('1/0');
    tf.dispose([odd.inputIds, wide.media.image[0][0]]);
  });
});
