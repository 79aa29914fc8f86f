// The main commands' loops on webgpu (dawn) against wasm: the Trainer's losses to 1e-3, the fixture's greedy
// ids through generateAsync, a padded multimodal batch through MultimodalModel.generateAsync, and the chunked
// gradient norm over 40 tensors (one addN over them read back stale values there). Runs wherever the webgpu
// packages and a Vulkan driver are found (lavapipe is enough: docs/gpu.md); skipped with the reason otherwise.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAsync } from '../generation/generate.js';
import { loadCausalLM } from '../llm/weights.js';
import { globalNormAsync } from '../optim/clip.js';
import {
  learnRecipe,
  ToyBatchSource,
  tinyMultimodalModel,
  toyBatch,
  toySamples,
} from '../train/test-utils.js';
import { Trainer } from '../train/trainer.js';
import { initBackend } from './init.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));
const textCases = (
  JSON.parse(readFileSync(`${FIXTURE}cases.json`, 'utf8')) as {
    cases: { image: string | null; input_ids: number[]; expected: { greedy_ids: number[] } }[];
  }
).cases.filter((c) => c.image === null);

const unavailable = await initBackend({ backend: 'webgpu' }).then(
  () => null,
  (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 300),
);
const root = await mkdtemp(join(tmpdir(), 'vistune-webgpu-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs `work` on each backend in turn (a fresh model per backend), returning the results by backend. */
async function onEach<T>(work: (backend: string) => Promise<T>): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  for (const backend of ['wasm', 'webgpu'] as const) {
    await initBackend({ backend });
    out[backend] = await work(backend);
  }
  return out;
}

describe.skipIf(unavailable !== null)(
  `webgpu against wasm${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    it('the Trainer (awaited loss, chunked clip norm) gives wasm losses to 1e-3 and learns', async () => {
      const runs = await onEach(async (backend) => {
        const recipe = learnRecipe(join(root, backend), {
          stages: [{ name: 'full', train: ['modalities.image.adapter.*', 'llm.*'], lr: 1e-2, steps: 8 }],
        });
        const model = tinyMultimodalModel(1);
        const losses: number[] = [];
        const norms: number[] = [];
        await new Trainer({
          model,
          recipe,
          data: () => new ToyBatchSource(toySamples(16), 4, 1),
          onStep: (m) => {
            losses.push(m.loss);
            norms.push(m.gradNorm);
          },
        }).run();
        model.dispose();
        return { losses, norms };
      });
      expect(runs.webgpu.losses).toHaveLength(8);
      const lossGaps = runs.webgpu.losses.map((loss, i) => Math.abs(loss - runs.wasm.losses[i]));
      expect(Math.max(...lossGaps)).toBeLessThan(1e-3);
      const normGaps = runs.webgpu.norms.map((n, i) => Math.abs(n - runs.wasm.norms[i]) / runs.wasm.norms[i]);
      expect(Math.max(...normGaps)).toBeLessThan(1e-3);
      expect(runs.webgpu.losses[7]).toBeLessThan(runs.webgpu.losses[0]);
    }, 600_000);

    it('generateAsync reproduces the fixture greedy ids', async () => {
      await initBackend({ backend: 'webgpu' });
      const model = await loadCausalLM(FIXTURE);
      const out = await generateAsync(
        model,
        { inputIds: textCases.map((c) => c.input_ids) },
        { maxNewTokens: 12 },
      );
      expect(out.ids).toEqual(textCases.map((c) => c.expected.greedy_ids));
      model.dispose();
    }, 600_000);

    it('MultimodalModel.generateAsync on a left-padded batch with media gives the wasm ids', async () => {
      const ids = await onEach(async () => {
        const model = tinyMultimodalModel(2);
        const batch = toyBatch(toySamples(3)); // right-padded training batch: re-pad its prompts on the left
        const rows = (await batch.inputIds.array()).map((row, r) => row.slice(0, 5 + (r % 3)));
        const width = Math.max(...rows.map((r) => r.length));
        const inputIds = tf.tensor2d(
          rows.map((r) => [...Array(width - r.length).fill(0), ...r]),
          undefined,
          'int32',
        );
        const attentionMask = tf.tensor2d(
          rows.map((r) => [...Array(width - r.length).fill(0), ...r.map(() => 1)]),
          undefined,
          'int32',
        );
        const out = await model.generateAsync(inputIds, batch.media, { attentionMask, maxNewTokens: 6 });
        tf.dispose([
          inputIds,
          attentionMask,
          batch.inputIds,
          batch.labels,
          batch.attentionMask,
          ...(batch.media?.image.flat() ?? []),
        ]);
        model.dispose();
        return out.ids;
      });
      expect(ids.webgpu).toEqual(ids.wasm);
    }, 600_000);

    it('the gradient norm over 40 tensors matches wasm (a single addN of them read back stale values)', async () => {
      const norms = await onEach(async () => {
        const grads = new Map(
          Array.from({ length: 40 }, (_, i) => [`p${i}`, tf.fill([64], (i % 7) + 1)] as const),
        );
        const norm = await globalNormAsync(grads);
        tf.dispose([...grads.values()]);
        return norm;
      });
      expect(Math.abs(norms.webgpu - norms.wasm) / norms.wasm).toBeLessThan(1e-6);
    }, 600_000);
  },
);
