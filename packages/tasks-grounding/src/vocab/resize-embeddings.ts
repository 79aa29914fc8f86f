// Resizing a LLaMA-family LLM's vocabulary after Tokenizer.addTokens (Kosmos-2 location tokens, [SEG]), as
// transformers' `resize_token_embeddings`. core's LlamaForCausalLM fixes its table shapes at construction
// (parameters are tf.Variables of a fixed shape), so this builds a new model with the new vocabulary and
// copies every weight into it by name through loadStateDict; the old model is left to the caller to dispose.
import { LlamaForCausalLM, Rng, tf } from '@vistune/core';

export interface ResizeTokenEmbeddingsOptions {
  /**
   * How new rows start (HF `mean_resizing`):
   * - `mean` (HF default): rows ~ N(μ, 1e-9·Σ) of the old rows' mean μ and covariance Σ = XcᵀXc / N when Σ is
   *   positive definite, else exactly μ. Σ is singular when the old vocabulary is not larger than the hidden
   *   size; otherwise it is taken as positive definite (a trained table has full rank; HF tests it with a
   *   Cholesky factorisation);
   * - `normal`: N(0, initializer_range²), HF `mean_resizing=False`.
   */
  init?: 'mean' | 'normal';
  /** Seed of the random draws. Default 0. */
  seed?: number;
}

/** Scale of HF's covariance for the new rows. */
const COVARIANCE_EPSILON = 1e-9;
/** New rows drawn per matmul in `mean` mode (bounds the [rows, N] normal draw). */
const NOISE_CHUNK_ROWS = 64;

/** `count` new rows for an old table [N, d]. */
function newRows(
  old: tf.Tensor2D,
  count: number,
  init: 'mean' | 'normal',
  rng: Rng,
  std: number,
): tf.Tensor2D {
  const [N, d] = old.shape;
  if (init === 'normal') return tf.tensor2d(rng.normal(count * d, std), [count, d]);
  return tf.tidy(() => {
    const mean = tf.mean(old, 0, true);
    if (N <= d) return tf.tile(mean, [count, 1]) as tf.Tensor2D;
    // z·Xc with z ~ N(0, I_N) has covariance XcᵀXc = N·Σ per row: scaling by sqrt(ε/N) gives N(0, ε·Σ)
    // without factorising the d×d covariance. Rows are drawn in chunks so z stays small for large vocabularies.
    const centered = tf.sub(old, mean);
    const chunks: tf.Tensor[] = [];
    for (let start = 0; start < count; start += NOISE_CHUNK_ROWS) {
      const rows = Math.min(NOISE_CHUNK_ROWS, count - start);
      const z = tf.tensor2d(rng.normal(rows * N), [rows, N]);
      chunks.push(tf.add(mean, tf.mul(tf.matMul(z, centered), Math.sqrt(COVARIANCE_EPSILON / N))));
      z.dispose();
    }
    return tf.concat(chunks, 0) as tf.Tensor2D;
  });
}

/** Old table [N, d] → [newVocab, d]: rows kept (or cut when shrinking), new rows appended. */
function resizedTable(
  old: tf.Tensor2D,
  newVocab: number,
  init: 'mean' | 'normal',
  rng: Rng,
  std: number,
): tf.Tensor2D {
  const N = old.shape[0];
  if (newVocab <= N) return tf.slice(old, [0, 0], [newVocab, -1]);
  const rows = newRows(old, newVocab - N, init, rng, std);
  const table = tf.concat([old, rows], 0) as tf.Tensor2D;
  rows.dispose();
  return table;
}

/**
 * A copy of `llm` whose embedding table (and untied lm_head) has `newVocab` rows: old rows kept, new rows
 * initialised as HF does. Trainable flags and train/eval mode carry over. Resize before attaching LoRA
 * (its extra parameters have no place in a fresh model). Returns `llm` itself when the size is unchanged.
 */
export function resizeTokenEmbeddings(
  llm: LlamaForCausalLM,
  newVocab: number,
  opts: ResizeTokenEmbeddingsOptions = {},
): LlamaForCausalLM {
  if (!Number.isInteger(newVocab) || newVocab < 1)
    throw new Error(`resizeTokenEmbeddings: newVocab must be a positive integer, got ${newVocab}`);
  if (newVocab === llm.vocabSize) return llm;
  const init = opts.init ?? 'mean';
  const rng = new Rng(opts.seed ?? 0);
  const std = llm.config.initializerRange;
  const resized = new LlamaForCausalLM({ ...llm.config, vocabSize: newVocab }, { random: false });
  const tables = new Set(['model.embed_tokens.weight', 'lm_head.weight']);
  const created: tf.Tensor[] = [];
  const weights = new Map<string, tf.Tensor>();
  for (const [name, param] of llm.stateDict()) {
    if (!tables.has(name)) {
      weights.set(name, param);
      continue;
    }
    const table = resizedTable(param as tf.Tensor2D, newVocab, init, rng, std);
    created.push(table);
    weights.set(name, table);
  }
  try {
    resized.loadStateDict(weights, { source: 'resizeTokenEmbeddings' });
  } catch (err) {
    resized.dispose();
    throw new Error(
      `${(err as Error).message}\nresizeTokenEmbeddings copies a plain LlamaForCausalLM: merge or detach LoRA (or other attached branches) before resizing, and attach them afterwards`,
    );
  } finally {
    tf.dispose(created);
  }
  const trainable = new Map(llm.namedParameters().map(([n, p]) => [n, p.trainable]));
  for (const [name, param] of resized.namedParameters()) param.trainable = trainable.get(name) ?? true;
  resized.train(llm.training);
  return resized;
}
