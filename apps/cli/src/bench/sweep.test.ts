import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVistuneRegistry } from '../api/registry.js';
import {
  measurePointInProcess,
  pointConfig,
  runSweep,
  type SweepMeasure,
  sweepPoints,
  sweepTable,
  TINY_LLAVA_CONFIG,
  torchRefRunner,
  trackTensorPeak,
} from './sweep.js';

const SIZES = { batch: 1, steps: 2, warmup: 1 };

describe('bench --sweep shapes', () => {
  it('points cover both axes at the fixed value of the other', () => {
    expect(sweepPoints([256, 4096], [4, 576], 1024, 64)).toEqual([
      { axis: 'seq', seq: 256, imageTokens: 64 },
      { axis: 'seq', seq: 4096, imageTokens: 64 },
      { axis: 'image_tokens', seq: 1024, imageTokens: 4 },
      { axis: 'image_tokens', seq: 1024, imageTokens: 576 },
    ]);
  });

  it('a point config has √tokens patches a side, RoPE long enough and the bench object', () => {
    const c = pointConfig(TINY_LLAVA_CONFIG, { axis: 'seq', seq: 4096, imageTokens: 576 }, SIZES);
    expect((c.vision_config as { image_size: number }).image_size).toBe(24 * 8);
    expect(c.image_seq_length).toBe(576);
    expect((c.text_config as { max_position_embeddings: number }).max_position_embeddings).toBe(4096);
    expect(c.bench).toEqual({ ...SIZES, seq: 4096 });
    // the base config is left as it was
    expect((TINY_LLAVA_CONFIG.vision_config as { image_size: number }).image_size).toBe(64);
  });

  it('rejects image tokens that are not a square, and a seq too short for the image', () => {
    expect(() => pointConfig(TINY_LLAVA_CONFIG, { axis: 'seq', seq: 256, imageTokens: 50 }, SIZES)).toThrow(
      /--image-tokens 50 is not a square/,
    );
    expect(() =>
      pointConfig(TINY_LLAVA_CONFIG, { axis: 'image_tokens', seq: 256, imageTokens: 576 }, SIZES),
    ).toThrow(/seq 256 is too short for 576 image tokens/);
  });
});

describe('bench --sweep run', () => {
  it('measures every point on both sides, records failures, writes report, SVG and HTML', async () => {
    const out = await mkdtemp(join(tmpdir(), 'sweep-'));
    const seen: string[] = [];
    const fake =
      (msPerToken: number): ((file: string) => Promise<SweepMeasure>) =>
      async (file) => {
        seen.push(file);
        const seq = (JSON.parse(await readFile(file, 'utf8')) as { bench: { seq: number } }).bench.seq;
        if (msPerToken > 1 && seq === 4096) throw new Error('out of memory');
        return {
          median_ms_per_step: seq * msPerToken,
          min_ms_per_step: seq,
          loss_first: 10,
          peak_rss_mb: seq / 4,
        };
      };
    const report = await runSweep({
      seqs: [256, 4096],
      imageTokens: [4],
      batch: 1,
      steps: 2,
      warmup: 1,
      attention: 'auto',
      out,
      vistune: fake(1),
      torch: fake(2),
    });
    expect(report.rows.map((r) => [r.axis, r.seq, r.imageTokens])).toEqual([
      ['seq', 256, 64],
      ['seq', 4096, 64],
      ['image_tokens', 1024, 4],
    ]);
    expect(seen).toHaveLength(6);
    expect(report.rows[1].vistune).toMatchObject({ median_ms_per_step: 4096 });
    expect(report.rows[1].torch).toEqual({ error: 'out of memory' });
    const svg = await readFile(report.paths.svg, 'utf8');
    expect(svg.match(/<polyline/g)).toHaveLength(8); // 4 panels × 2 sides
    expect(svg.match(/<circle/g)).toHaveLength(10); // 6 vistune points, 4 PyTorch points: the failed one is left out
    expect(await readFile(report.paths.html, 'utf8')).toContain('<svg');
    expect(JSON.parse(await readFile(report.paths.report, 'utf8')).rows).toHaveLength(3);
    expect(sweepTable(report)).toContain('- torch, seq 4096, 64 image tokens: out of memory');
  });

  it("reads torch_ref.py's JSON line (a stand-in script prints one)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sweep-torch-'));
    const script = join(dir, 'fake_ref.mjs');
    await writeFile(
      script,
      'console.log("noise");console.log(JSON.stringify({train:{median_ms_per_step:12.5,min_ms_per_step:11,loss_first:10.4},peak_rss_mb:321,args:process.argv.slice(2)}));',
    );
    const runner = torchRefRunner({ python: process.execPath, script, threads: 2, timeoutMs: 30_000 });
    expect(await runner('point.json')).toEqual({
      median_ms_per_step: 12.5,
      min_ms_per_step: 11,
      loss_first: 10.4,
      peak_rss_mb: 321,
    });
    const failing = torchRefRunner({
      python: process.execPath,
      script: join(dir, 'missing.mjs'),
      threads: 1,
      timeoutMs: 30_000,
    });
    await expect(failing('point.json')).rejects.toThrow(/exit 1/);
  });
});

describe('bench --sweep in one process', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
  });

  it('tracks the peak of tensor bytes and leaves the engine counting normally', () => {
    const before = tf.memory().numBytes;
    const tracker = trackTensorPeak();
    const a = tf.zeros([1000]); // 4000 bytes
    const b = tf.zeros([500]);
    tf.dispose([a, b]);
    const c = tf.zeros([10]);
    expect(tracker.stop()).toBe(before + 6000);
    expect(tf.memory().numBytes).toBe(before + 40);
    c.dispose();
    expect(tf.memory().numBytes).toBe(before);
  });

  it('a point trains to the same first loss with chunked and unchunked attention', async () => {
    const micro = {
      ...TINY_LLAVA_CONFIG,
      text_config: { ...(TINY_LLAVA_CONFIG.text_config as object), vocab_size: 512, num_hidden_layers: 1 },
      image_token_index: 500,
      pad_token_id: 501,
    };
    const config = pointConfig(
      micro,
      { axis: 'seq', seq: 40, imageTokens: 4 },
      { batch: 1, steps: 1, warmup: 1 },
    );
    const registry = await createVistuneRegistry();
    const chunked = await measurePointInProcess(config, registry, 'chunked');
    const unchunked = await measurePointInProcess(config, registry, 'unchunked');
    expect(chunked.loss_first).toBeCloseTo(unchunked.loss_first, 4);
    expect(chunked.tensor_peak_mb).toBeGreaterThan(0);
    expect(chunked.median_ms_per_step).toBeGreaterThan(0);
  }, 120_000);
});
