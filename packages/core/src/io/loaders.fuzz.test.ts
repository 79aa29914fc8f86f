// Fuzzing the file loaders: a valid safetensors file, model folder (config.json + weights) and tokenizer.json,
// mutated (bytes flipped, truncated, JSON values swapped for wrong types, keys deleted), must load or fail with
// a plain Error whose message names the file: no TypeError/RangeError from deep inside, no hang. Seeded and
// bounded, so a failure reproduces from its case number.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { parseLlamaConfig } from '../llm/config.js';
import { LlamaForCausalLM } from '../llm/llama.js';
import { loadCausalLM, saveCausalLM } from '../llm/weights.js';
import { Rng } from '../nn/rng.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadSafetensors } from './safetensors-read.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'vistune-fuzz-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const WRONG_VALUES: unknown[] = [null, -1, 0, 1e300, 'x', '', [], {}, true, [1, 'a'], { a: null }];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng.nextFloat() * items.length)];
}

/** Replaces a random value somewhere in the JSON tree with a wrong one, or deletes its key. */
function mutateJson(value: unknown, rng: Rng): unknown {
  const copy = structuredClone(value);
  let node = copy as Record<string, unknown>;
  for (let depth = 0; depth < 6; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = pick(rng, keys);
    const child = node[key];
    const descend = typeof child === 'object' && child !== null && rng.nextFloat() < 0.6;
    if (!descend) {
      if (rng.nextFloat() < 0.2 && !Array.isArray(node)) delete node[key];
      else node[key] = pick(rng, WRONG_VALUES);
      break;
    }
    node = child as Record<string, unknown>;
  }
  return copy;
}

/** Bytes flipped at random places, or cut short. */
function mutateBytes(bytes: Uint8Array, rng: Rng): Uint8Array {
  if (rng.nextFloat() < 0.3) return bytes.slice(0, Math.floor(rng.nextFloat() * bytes.length));
  const out = bytes.slice();
  const flips = 1 + Math.floor(rng.nextFloat() * 4);
  // Most flips land in the first KB (headers, config keys), where structure lives.
  for (let i = 0; i < flips; i++) {
    const span = rng.nextFloat() < 0.8 ? Math.min(1024, out.length) : out.length;
    out[Math.floor(rng.nextFloat() * span)] ^= 1 + Math.floor(rng.nextFloat() * 255);
  }
  return out;
}

/** Rewrites a safetensors file's JSON header through mutateJson, keeping the length prefix consistent. */
function mutateSafetensorsHeader(bytes: Uint8Array, rng: Rng): Uint8Array {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const json = new TextEncoder().encode(JSON.stringify(mutateJson(header, rng)));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + length), 8 + json.length);
  return out;
}

/** Runs `load`; it must succeed or throw a plain Error naming `file`. Returns what happened, for the tally. */
async function expectCleanOutcome(
  caseName: string,
  file: string,
  load: () => Promise<unknown>,
): Promise<'ok' | 'error'> {
  try {
    await load();
    return 'ok';
  } catch (err) {
    const e = err as Error;
    expect(e, `${caseName}: not an Error: ${String(err)}`).toBeInstanceOf(Error);
    expect(
      ['TypeError', 'RangeError', 'SyntaxError', 'ReferenceError'],
      `${caseName}: ${e.stack}`,
    ).not.toContain(e.name);
    expect(e.message, `${caseName}: the message does not name ${file}`).toContain(file);
    return 'error';
  }
}

/** A two-layer LLaMA folder small enough to load in milliseconds. */
async function tinyModelFolder(dir: string): Promise<void> {
  const model = new LlamaForCausalLM(
    parseLlamaConfig({
      model_type: 'llama',
      vocab_size: 16,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      max_position_embeddings: 32,
    }),
    { seed: 1 },
  );
  await saveCausalLM(model, dir);
  model.dispose();
}

/** A tiny BPE tokenizer.json: the structure the real ones have, a vocabulary of five. */
const TINY_TOKENIZER = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [
    {
      id: 0,
      content: '<unk>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    },
  ],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: '<unk>',
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    vocab: { '<unk>': 0, a: 1, b: 2, ab: 3, c: 4 },
    merges: ['a b'],
  },
};

describe('loader fuzzing (seeded)', () => {
  it('mutated safetensors files: bytes flipped, truncated, header values of wrong types', async () => {
    const dir = join(root, 'safetensors');
    await tinyModelFolder(dir);
    const original = new Uint8Array(await readFile(join(dir, 'model.safetensors')));
    const rng = new Rng(13);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < 200; i++) {
      const path = join(dir, `case-${i}.safetensors`);
      const bytes = i % 2 === 0 ? mutateSafetensorsHeader(original, rng) : mutateBytes(original, rng);
      await writeFile(path, bytes);
      const outcome = await expectCleanOutcome(`safetensors case ${i}`, path, async () => {
        const tensors = await loadSafetensors(path);
        tf.dispose([...tensors.values()]);
      });
      tally[outcome]++;
      await rm(path);
    }
    expect(tally.error).toBeGreaterThan(100); // the mutations do reach the checks
  }, 30_000);

  it('mutated config.json of a model folder', async () => {
    const dir = join(root, 'config');
    await tinyModelFolder(dir);
    const configPath = join(dir, 'config.json');
    const original = await readFile(configPath);
    const config = JSON.parse(original.toString('utf8'));
    const rng = new Rng(17);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < 120; i++) {
      const text =
        i % 3 === 0
          ? Buffer.from(mutateBytes(new Uint8Array(original), rng))
          : JSON.stringify(mutateJson(config, rng));
      await writeFile(configPath, text);
      tally[
        await expectCleanOutcome(`config case ${i}`, configPath, async () =>
          (await loadCausalLM(dir)).dispose(),
        )
      ]++;
    }
    expect(tally.error).toBeGreaterThan(40);
  }, 30_000);

  it('mutated tokenizer.json', async () => {
    const dir = join(root, 'tokenizer');
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'tokenizer.json');
    const text = JSON.stringify(TINY_TOKENIZER);
    await writeFile(path, text);
    expect((await Tokenizer.fromDir(dir)).encode('ab c', { addSpecialTokens: false })).toEqual([3, 4]);
    const rng = new Rng(19);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < 150; i++) {
      const mutated =
        i % 3 === 0
          ? Buffer.from(mutateBytes(new TextEncoder().encode(text), rng))
          : JSON.stringify(mutateJson(TINY_TOKENIZER, rng));
      await writeFile(path, mutated);
      tally[await expectCleanOutcome(`tokenizer case ${i}`, path, () => Tokenizer.fromDir(dir))]++;
    }
    expect(tally.error).toBeGreaterThan(30);
  }, 30_000);
});
