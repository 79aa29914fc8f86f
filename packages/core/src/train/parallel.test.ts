// Data-parallel training (parallel.workers): 2 replicas give the losses and weights of one process with the
// same effective batch (accumulated micro-batches, split batches, LoRA stages), a worker's failure fails the
// run instead of hanging it, and what replicas cannot reproduce is refused naming the field.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import type { ReplicaSpec } from './parallel.js';
import type { Recipe } from './recipe.js';
import { bundleForNode, testBundlePath } from './test-bundle.js';
import { learnRecipe, ToyBatchSource, tinyMultimodalModel, toyRecipe, toySamples } from './test-utils.js';
import { Trainer } from './trainer.js';

const workerScript = testBundlePath('vistune-parallel', 'replica-worker.mjs');

/** The worker entry and the replica factories in one bundle (Node cannot run TypeScript): one module instance. */
const FIXTURE = `
export { serveReplica } from './parallel-worker.ts'; // exported: the package's sideEffects: false would drop a bare import
import { tinyMultimodalModel } from './test-utils.ts';
export { tinyMultimodalModel };
export function throwingModel(seed) {
  const model = tinyMultimodalModel(seed);
  model.forward = () => { throw new Error('replica forward exploded'); };
  return model;
}
export function exitingModel(seed) {
  const model = tinyMultimodalModel(seed);
  model.forward = () => process.exit(7);
  return model;
}
`;

const replica = (exportName = 'tinyMultimodalModel'): ReplicaSpec => ({
  module: pathToFileURL(workerScript).href,
  exportName,
  options: 3,
  workerScript: pathToFileURL(workerScript),
});

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  await bundleForNode(workerScript, { source: FIXTURE });
  root = await mkdtemp(join(tmpdir(), 'vistune-parallel-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(dirname(workerScript), { recursive: true, force: true });
});

const withWorkers = (recipe: Recipe, workers: number, output: string): Recipe => ({
  ...recipe,
  parallel: { workers },
  output,
  checkpoint: { ...recipe.checkpoint, dir: join(output, 'checkpoints') },
});

/** Trains a fresh tiny model on `recipe` with `workers` replicas; its per-step losses and final weights. */
async function train(recipe: Recipe, workers: number, name: string, spec: ReplicaSpec = replica()) {
  const model = tinyMultimodalModel(3);
  const losses: number[] = [];
  const warnings: string[] = [];
  try {
    await new Trainer({
      model,
      recipe: withWorkers(recipe, workers, join(root, name)),
      // Sized by the stage as handed over: parallel.workers may ask for smaller batches.
      data: (stage) => new ToyBatchSource(toySamples(12), stage.batchSize ?? recipe.data.batchSize, 1),
      onStep: (m) => losses.push(m.loss),
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
      replica: workers > 1 ? spec : undefined,
    }).run();
    const weights = new Map(
      [...model.stateDict()].map(([n, p]) => [n, p.dataSync().slice() as Float32Array]),
    );
    return { losses, weights, warnings };
  } finally {
    model.dispose();
  }
}

/** Losses per step equal within 1e-5 relative, every final weight within `weightTolerance` of its tensor's scale. */
function expectSameRun(
  a: Awaited<ReturnType<typeof train>>,
  b: Awaited<ReturnType<typeof train>>,
  weightTolerance = 1e-5,
): void {
  expect(b.losses.length).toBe(a.losses.length);
  a.losses.forEach((loss, i) => {
    expect(Math.abs(b.losses[i] - loss) / Math.abs(loss), `loss of step ${i + 1}`).toBeLessThan(1e-5);
  });
  expect([...b.weights.keys()]).toEqual([...a.weights.keys()]);
  for (const [name, w] of a.weights) {
    const other = b.weights.get(name) as Float32Array;
    const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
    const diff = w.reduce((m, v, i) => Math.max(m, Math.abs(v - other[i])), 0);
    expect(diff / scale, name).toBeLessThan(weightTolerance);
  }
}

describe('data-parallel training (parallel.workers)', () => {
  it('2 workers = 1 process: two stages with accumulate 2, LoRA (dropout 0) merged between them', async () => {
    const base = toyRecipe(join(root, 'unused'));
    const recipe: Recipe = {
      ...base,
      stages: base.stages.map((s) => (s.lora ? { ...s, lora: { ...s.lora, dropout: 0 } } : s)),
    };
    const one = await train(recipe, 1, 'lora-1');
    const two = await train(recipe, 2, 'lora-2');
    expectSameRun(one, two);
  }, 60_000);

  it('2 workers split each batch of 4 into 2 micro-batches of 2: the same steps as one process', async () => {
    const recipe = learnRecipe(join(root, 'unused'), {
      stages: [{ name: 'full', train: ['modalities.image.adapter.*', 'llm.*'], lr: 1e-2, steps: 4 }],
    });
    const one = await train(recipe, 1, 'split-1');
    const two = await train(recipe, 2, 'split-2');
    // Told that splitting gains little, and how to get a speed-up instead.
    expect(two.warnings.join('\n')).toMatch(
      /stage "full": parallel.workers 2 splits each batch of 4 into micro-batches of 2, .*accumulate ≥ 2/,
    );
    expect(one.warnings.join('\n')).not.toMatch(/splits each batch/);
    // Batches of 2 pad to other lengths than batches of 4, so float rounding differs (AdamW then scales
    // it up where gradients are tiny): the same micro-batches in one process match to 1e-5, batches of 4 to 1e-4.
    expectSameRun(one, two, 1e-4);
    const stage = { ...recipe.stages[0], batchSize: 2, accumulate: 2 };
    const sameMicroBatches = await train({ ...recipe, stages: [stage] }, 1, 'split-micro');
    expectSameRun(sameMicroBatches, two);
  }, 60_000);

  it("a worker's error fails the run with that error; a worker that exits fails it too (no hang)", async () => {
    const recipe = learnRecipe(join(root, 'unused'), {
      stages: [{ name: 'full', train: ['llm.*'], lr: 1e-2, steps: 2 }],
    });
    await expect(train(recipe, 2, 'throws', replica('throwingModel'))).rejects.toThrow(
      /data-parallel worker 1: .*replica forward exploded/,
    );
    await expect(train(recipe, 2, 'exits', replica('exitingModel'))).rejects.toThrow(
      /data-parallel worker 1 exited unexpectedly \(exit code 7\)/,
    );
    await expect(train(recipe, 2, 'no-export', replica('noSuchModel'))).rejects.toThrow(
      /no function export 'noSuchModel'/,
    );
  }, 60_000);

  it('refuses what replicas cannot reproduce, naming the field and the fix', async () => {
    const lora = toyRecipe(join(root, 'unused')); // its instruct stage has lora.dropout 0.1
    await expect(train(lora, 2, 'dropout')).rejects.toThrow(
      /stages\[1\]\.lora\.dropout 0\.1: .*set lora\.dropout: 0/,
    );
    const odd = learnRecipe(join(root, 'unused'), { data: { train: 'x', batchSize: 3 } });
    await expect(train(odd, 2, 'odd')).rejects.toThrow(
      /stages\[0\] \("full"\): parallel\.workers 2 .*batch size 3 cannot be split into 2 equal parts: set the stage's accumulate to 2/,
    );
    const recipe = learnRecipe(join(root, 'unused'));
    const model = tinyMultimodalModel(3);
    try {
      const trainer = new Trainer({
        model,
        recipe: withWorkers(recipe, 2, join(root, 'no-replica')),
        data: () => new ToyBatchSource(toySamples(4), 2, 1),
      });
      await expect(trainer.run()).rejects.toThrow(/parallel\.workers 2: the trainer was given no replica/);
      const tooMany = new Trainer({
        model,
        recipe: withWorkers(
          { ...recipe, optimizer: { ...recipe.optimizer, accumulate: 4096 } },
          4096,
          join(root, 'too-many'),
        ),
        data: () => new ToyBatchSource(toySamples(4), 2, 1),
        replica: replica(),
      });
      await expect(tooMany.run()).rejects.toThrow(/parallel\.workers 4096 is more than the \d+ cores here/);
    } finally {
      model.dispose();
    }
  }, 60_000);
});
