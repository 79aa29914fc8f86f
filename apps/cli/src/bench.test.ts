// `vistune bench --config` on a micro LLaVA config: the JSON line's shape (torch_ref.py's plus backend) and
// that the train loop optimises. No timings are asserted: benchmarks are commands, not tests.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const run = promisify(execFile);

const microConfig = {
  model_type: 'llava',
  image_token_index: 60,
  projector_hidden_act: 'gelu',
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  image_seq_length: 4,
  text_config: {
    model_type: 'llama',
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 64,
    max_position_embeddings: 64,
    tie_word_embeddings: false,
  },
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_act: 'quick_gelu',
    image_size: 16,
    patch_size: 8,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
  },
  bench: { batch: 2, seq: 12, steps: 3, warmup: 1, gen_prompt: 3, gen_new: 4, gen_runs: 1 },
};

describe('vistune bench --config', () => {
  it('prints one JSON line with torch_ref.py’s fields plus backend, and the loss goes down', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-bench-'));
    const file = join(dir, 'micro.json');
    await writeFile(file, JSON.stringify(microConfig));
    const { stdout } = await run(process.execPath, [bin, 'bench', '--config', file, '--json'], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]);
    expect(r).toMatchObject({
      bench: 'llava-vistune',
      config: 'micro',
      backend: 'wasm',
      threads: 1,
      dtype: 'float32',
    });
    expect(r.generate).toMatchObject({ prompt_tokens: 1 + 4 + 3, image_tokens: 4, new_tokens: 4, runs: 1 });
    expect(r.train).toMatchObject({ batch: 2, seq: 12, warmup: 1, steps: 3 });
    for (const key of ['prefill_ms', 'decode_tokens_per_s']) expect(r.generate[key]).toBeGreaterThan(0);
    for (const key of ['median_ms_per_step', 'min_ms_per_step', 'tokens_per_s'])
      expect(r.train[key]).toBeGreaterThan(0);
    expect(r.train.loss_last).toBeLessThan(r.train.loss_first);
    // Trainable: projector (16·16+16 + 16·16+16) and the whole decoder; the vision tower is frozen.
    expect(r.train.trainable_params).toBe(r.params_total - r.params_vision);
    expect(r.peak_rss_mb).toBeGreaterThanOrEqual(r.peak_rss_mb_after_generate);
  });

  it('--workers 2 computes each step on two replicas (half the batch each): the losses of one process', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-bench-'));
    const file = join(dir, 'micro.json');
    await writeFile(file, JSON.stringify({ ...microConfig, bench: { ...microConfig.bench, batch: 4 } }));
    const benchArgs = (workers: number) => [
      bin,
      'bench',
      '--config',
      file,
      '--skip-generate',
      '--workers',
      `${workers}`,
    ];
    const train = async (workers: number) => {
      const { stdout } = await run(process.execPath, [...benchArgs(workers), '--json'], {
        env: { ...process.env, NO_COLOR: '1' },
      });
      return JSON.parse(stdout).train;
    };
    const [one, two] = [await train(1), await train(2)];
    expect(one.workers).toBe(1);
    expect(two).toMatchObject({ workers: 2, batch: 4, trainable_params: one.trainable_params });
    // Loss of the first step (same weights) and of the last (after 3 updates from summed half-batch gradients).
    expect(two.loss_first).toBeCloseTo(one.loss_first, 3);
    expect(two.loss_last).toBeCloseTo(one.loss_last, 3);
    expect(two.loss_last).toBeLessThan(two.loss_first);

    const odd = await run(process.execPath, benchArgs(3)).catch((e) => e);
    expect(odd.code).not.toBe(0);
    expect(odd.stderr).toMatch(/--workers 3 splits each step's batch of 4 rows evenly/);
  });

  it('refuses a config without a "bench" object, naming the fields', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vistune-bench-'));
    const file = join(dir, 'nobench.json');
    const { bench: _omitted, ...config } = microConfig;
    await writeFile(file, JSON.stringify(config));
    const err = await run(process.execPath, [bin, 'bench', '--config', file, '--json']).catch((e) => e);
    expect(err.code).not.toBe(0);
    expect(err.stderr).toMatch(/"bench" object \{batch, seq, steps, warmup/);
  });
});

describe('vistune bench ops', () => {
  it('--json prints one JSON object and no table (the subcommand flag, not the parent bench’s)', async () => {
    const { stdout } = await run(
      process.execPath,
      [bin, 'bench', 'ops', '--quick', '--backends', 'wasm', '--json'],
      {
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0] as string);
    expect(r.quick).toBe(true);
    expect(r.results[0].backend).toBe('wasm');
    expect(r.results[0].matmul[0].gflops).toBeGreaterThan(0);
  });
});
