// `vistune bench connectors` logic on a world of a few images and two steps: the report's shape, that every
// connector starts from the same shared weights, the files it writes. No timings or accuracies are asserted.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVistuneRegistry } from '../api/registry.js';
import { benchConnectors, connectorsTable } from './connectors.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', quiet: true });
});

describe('bench connectors', () => {
  it('trains each chosen recipe from the same tower and LLM, scores it and writes table, report and curves', async () => {
    const out = await mkdtemp(join(tmpdir(), 'vistune-bench-connectors-'));
    const report = await benchConnectors(await createVistuneRegistry({ plugins: [] }), {
      out,
      seed: 3,
      steps: 2,
      evalEvery: 1,
      batchSize: 4,
      connectors: ['llava-mlp2x-gelu', 'llama-adapter-v2'],
      sizes: { images: { train: 12, val: 2, test: 2 }, towerSteps: 1, llmWarmupSteps: 1 },
    });
    expect(report.rows.map((r) => [r.name, r.adapter, r.slots])).toEqual([
      ['llama-adapter-v2', 'llama_adapter', 10],
      ['llava-mlp2x-gelu', 'mlp2x_gelu', 16],
    ]);
    const [adapterRow, mlpRow] = report.rows;
    // LLaMA-Adapter trains its adapter and the LLM's RMSNorm weights (9 × 128), LLaVA the projector and all the LLM.
    expect(adapterRow?.llm).toBe(`${9 * 128} params`);
    expect(mlpRow?.llm).toBe('trained');
    for (const r of report.rows) {
      expect(r.heldOut.map((h) => h.step)).toEqual([0, 1, 2]);
      for (const v of [r.vqaExactMatch, r.countAccuracy, r.groundingAcc50])
        expect(v).toBeGreaterThanOrEqual(0);
      expect(r.msPerStep).toBeGreaterThan(0);
    }
    const table = connectorsTable(report);
    expect(table.split('\n')).toHaveLength(5);
    expect(table).toContain('| *no image* (warmed-up LLM, slots zeroed) |');
    expect(report.blind.vqaExactMatch).toBeGreaterThanOrEqual(0);
    expect(table).toContain('| llava-mlp2x-gelu | `mlp2x_gelu` | trained | 720,000 | 16 |');
    expect(await readFile(report.paths.table, 'utf8')).toBe(`${table}\n`);
    const svg = await readFile(report.paths.svg, 'utf8');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(JSON.parse(await readFile(report.paths.report, 'utf8')).rows).toHaveLength(2);
    await expect(
      benchConnectors(await createVistuneRegistry({ plugins: [] }), { out, seed: 3, connectors: ['nope'] }),
    ).rejects.toThrow(/no recipe nope/);
  }, 240_000);
});
