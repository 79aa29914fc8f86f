import { fileURLToPath } from 'node:url';
import { initBackend, LlamaForCausalLM, parseLlamaConfig, Tokenizer, tf } from '@vistune/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Kosmos2Codec } from '../codecs/kosmos2.js';
import { resizeTokenEmbeddings } from './resize-embeddings.js';

const fixtureDir = fileURLToPath(new URL('../../../../fixtures/tiny-llava-hf/', import.meta.url));

function tinyLlama(vocab: number, hidden: number, tied = false, seed = 3): LlamaForCausalLM {
  const config = parseLlamaConfig({
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: 2 * hidden,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    tie_word_embeddings: tied,
  });
  return new LlamaForCausalLM(config, { seed });
}

const rows = (t: tf.Tensor) => t.arraySync() as number[][];

/** Column means of a table, in float64. */
function columnMean(table: number[][]): number[] {
  return table[0].map((_, j) => table.reduce((s, r) => s + r[j], 0) / table.length);
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('resizeTokenEmbeddings', () => {
  it('keeps old rows and logits; new rows are the mean when the covariance is singular (vocab ≤ hidden)', () => {
    const llm = tinyLlama(10, 16);
    const resized = resizeTokenEmbeddings(llm, 14);
    const oldEmbed = rows(llm.model.embedTokens.weight);
    const newEmbed = rows(resized.model.embedTokens.weight);
    expect(newEmbed).toHaveLength(14);
    expect(newEmbed.slice(0, 10)).toEqual(oldEmbed);
    const mean = columnMean(oldEmbed);
    for (const row of newEmbed.slice(10))
      for (const [j, v] of row.entries()) expect(v).toBeCloseTo(mean[j], 6);
    const headMean = columnMean(rows(llm.head!.weight));
    for (const row of rows(resized.head!.weight).slice(10))
      for (const [j, v] of row.entries()) expect(v).toBeCloseTo(headMean[j], 6);
    // Same ids → same logits on the old vocabulary.
    const ids = tf.tensor2d([[1, 4, 9, 2]], [1, 4], 'int32');
    const before = llm.logits(ids);
    const after = resized.logits(ids);
    expect(after.shape).toEqual([1, 4, 14]);
    const kept = tf.slice(after, [0, 0, 0], [-1, -1, 10]);
    expect(tf.max(tf.abs(tf.sub(kept, before))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([ids, before, after, kept]);
    llm.dispose();
    resized.dispose();
  });

  it('draws new rows from N(μ, 1e-9·Σ) when vocab > hidden, and N(0, σ²) with init normal', () => {
    const llm = tinyLlama(300, 8, true);
    const resized = resizeTokenEmbeddings(llm, 340, { seed: 5 });
    expect(resized.head).toBeUndefined();
    const table = rows(resized.model.embedTokens.weight);
    const mean = columnMean(table.slice(0, 300));
    const deviations = table.slice(300).flatMap((row) => row.map((v, j) => v - mean[j]));
    // Per-column std of the old rows is ≈ 0.02, so the noise std is ≈ sqrt(1e-9)·0.02 ≈ 6e-7.
    const rms = Math.sqrt(deviations.reduce((s, d) => s + d * d, 0) / deviations.length);
    expect(rms).toBeGreaterThan(1e-7);
    expect(rms).toBeLessThan(3e-6);
    const normal = resizeTokenEmbeddings(llm, 2300, { init: 'normal', seed: 1 });
    const added = rows(normal.model.embedTokens.weight).slice(300).flat();
    const std = Math.sqrt(added.reduce((s, v) => s + v * v, 0) / added.length);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    // Shrinking keeps the first rows.
    const shrunk = resizeTokenEmbeddings(llm, 100);
    expect(rows(shrunk.model.embedTokens.weight)).toEqual(table.slice(0, 100));
    for (const m of [llm, resized, normal, shrunk]) m.dispose();
  });

  it('carries trainable flags, and adds the Kosmos-2 tokens of a real tokenizer end to end', async () => {
    const tokenizer = await Tokenizer.fromDir(fixtureDir);
    const codec = new Kosmos2Codec();
    const ids = tokenizer.addTokens(codec.specialTokens, { special: true });
    expect(new Set(ids).size).toBe(1030);
    const llm = tinyLlama(32064, 8);
    llm.trainOnly(['model.embed_tokens.*', 'lm_head.*']);
    const resized = resizeTokenEmbeddings(llm, Math.max(tokenizer.vocabSize, llm.vocabSize), {
      init: 'normal',
    });
    expect(resized.vocabSize).toBe(tokenizer.vocabSize);
    expect(resized.trainableParameters().map(([n]) => n)).toEqual([
      'model.embed_tokens.weight',
      'lm_head.weight',
    ]);
    const text = '<grounding><phrase>a dog</phrase><object><patch_index_0195><patch_index_0495></object>';
    const encoded = tokenizer.encode(text, { addSpecialTokens: false });
    expect(encoded).toContain(ids[6 + 195]);
    expect(encoded).toContain(ids[6 + 495]);
    const logits = resized.logits(tf.tensor2d([encoded], [1, encoded.length], 'int32'));
    expect(logits.shape[2]).toBe(tokenizer.vocabSize);
    logits.dispose();
    llm.dispose();
    resized.dispose();
  });
});
