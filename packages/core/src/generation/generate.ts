// Autoregressive generation over any CausalLM: one prefill pass over the prompt fills the KV cache, then one
// token per step. Batched prompts are left-padded; the attention mask hides the padding and position ids
// count only real tokens (cumsum(mask) - 1), as transformers does.
// Every device read has a sync and an async form: `generate` reads with dataSync (cpu, wasm, tfjs-node);
// `generateAsync` and `generateStream` await data(), which is the only read tfjs-webgpu offers in Node.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, KVCache } from '../llm/types.js';
import { buildLogitsProcessors, type LogitsProcessorList } from './logits.js';
import { greedyToken, sampleToken, samplingRandom, type UniformRandom } from './sampling.js';
import { buildStoppingCriteria, type StoppingCriteriaList, type StopReason } from './stopping.js';
import { DecodeStream } from './streamer.js';

/** Prompts as token ids (rows may differ in length), or as embeddings with media already spliced in. */
export type GenerateInput =
  | { inputIds: number[][] }
  | {
      /** [B, T, hidden], left-padded when rows differ in length. */
      inputsEmbeds: tf.Tensor3D;
      /** [B, T] 1 = real, 0 = padding; default all ones. */
      attentionMask?: tf.Tensor2D;
      /** Prompt ids per row (unpadded), seen only by the repetition penalty; default none. */
      promptIds?: number[][];
    };

export interface GenerateOptions {
  /** Tokens to generate at most per row (default 32, never past the model's maxPositions). */
  maxNewTokens?: number;
  /** Sample from the processed distribution instead of taking the argmax (HF do_sample). Default false. */
  doSample?: boolean;
  /** Sampling warpers (only with doSample, as in HF). */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in the prompt or the output (HF repetition_penalty); greedy too. */
  repetitionPenalty?: number;
  /** EOS cannot be chosen before this many new tokens. */
  minNewTokens?: number;
  /** A row stops after generating one of these (the EOS id is kept in its output). */
  eosTokenIds?: readonly number[];
  /** A row stops once its decoded output contains one of these; needs `decode`. */
  stopStrings?: readonly string[];
  /** Token ids → text (e.g. the tokenizer's decode): for stop strings and streamed / returned text. */
  decode?: (ids: readonly number[]) => string;
  /** Seed of the sampling stream (default: random). */
  seed?: number;
  /** Token fed to rows that already stopped while others continue (default eosTokenIds[0] ?? 0). */
  padTokenId?: number;
}

export interface GenerateResult {
  /** Generated ids per row, prompt excluded, up to and including the token that stopped the row. */
  ids: number[][];
  /** Why each row stopped. */
  finishReason: StopReason[];
  /** decode(ids[row]) per row, when a decode function was given. */
  text?: string[];
}

export interface GeneratedToken {
  row: number;
  tokenId: number;
  /** Newly completed text of the row ('' while a multi-byte character is unfinished), with `decode`. */
  text?: string;
  /** Set on the row's last token. */
  finishReason?: StopReason;
}

/** Positions of a left-padded row as HF computes them: cumsum(mask) - 1, and 1 at padding. */
function positionsFromMask(mask: readonly number[]): number[] {
  let seen = 0;
  return mask.map((m) => (m ? seen++ : 1));
}

/** One generation: prefill, then step() per token until every row has stopped. */
class GenerationRun {
  private readonly batch: number;
  private readonly cache: KVCache;
  private readonly processors: LogitsProcessorList[];
  private readonly stopping: StoppingCriteriaList;
  private readonly random: UniformRandom;
  private readonly streams: DecodeStream[] | null;
  private readonly history: number[][];
  private readonly generated: number[][];
  private readonly reasons: (StopReason | null)[];
  /** Left-padding bookkeeping (null when no row is padded: default positions, no mask). */
  private readonly maskRows: number[][] | null;
  private readonly nextPosition: number[];
  private prefilled = false;
  private lastTokens: number[];

  /** `maskValues`: the values of input.attentionMask, read by the caller (sync or async), when one is given. */
  constructor(
    private readonly model: CausalLM,
    private readonly input: GenerateInput,
    private readonly opts: GenerateOptions,
    maskValues: number[][] | undefined,
  ) {
    const { masks, promptIds } = this.promptLayout(maskValues);
    this.batch = masks.length;
    const lengths = masks.map((m) => m.reduce((s, x) => s + x, 0));
    if (lengths.some((n) => n === 0))
      throw new Error('generate: every row needs at least one prompt token (a row is all padding)');
    const room = model.maxPositions - Math.max(...lengths);
    const maxNewTokens = opts.maxNewTokens ?? Math.min(32, room);
    if (maxNewTokens > room || room < 1) {
      throw new Error(
        `generate: prompt of ${Math.max(...lengths)} tokens + maxNewTokens ${maxNewTokens} exceeds the model's ${model.maxPositions} positions`,
      );
    }
    const padded = masks.some((m) => m.includes(0));
    this.maskRows = padded ? masks.map((m) => [...m]) : null;
    this.nextPosition = lengths;
    this.history = promptIds.map((ids) => [...ids]);
    this.generated = masks.map(() => []);
    this.reasons = masks.map(() => null);
    this.lastTokens = masks.map(() => opts.padTokenId ?? opts.eosTokenIds?.[0] ?? 0);
    const eos = opts.eosTokenIds ?? [];
    this.processors = promptIds.map((ids) =>
      buildLogitsProcessors({
        repetitionPenalty: opts.repetitionPenalty,
        minNewTokens: opts.minNewTokens,
        promptLength: ids.length,
        eosTokenIds: eos,
        ...(opts.doSample ? { temperature: opts.temperature, topK: opts.topK, topP: opts.topP } : {}),
      }),
    );
    this.stopping = buildStoppingCriteria({
      maxNewTokens,
      eosTokenIds: eos,
      stopStrings: opts.stopStrings,
      decode: opts.decode,
    });
    this.random = samplingRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.streams = opts.decode ? masks.map(() => new DecodeStream(opts.decode!)) : null;
    this.cache = model.createCache(this.batch);
  }

  /** Masks [B, T] and unpadded prompt ids per row, from either input form. */
  private promptLayout(maskValues: number[][] | undefined): { masks: number[][]; promptIds: number[][] } {
    const input = this.input;
    if ('inputIds' in input) {
      const rows = input.inputIds;
      if (rows.length === 0) throw new Error('generate: inputIds has no rows');
      const V = this.model.vocabSize;
      rows.forEach((row, r) => {
        const bad = row.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
        if (bad !== undefined)
          throw new Error(`generate: inputIds[${r}] holds ${bad}, outside the vocabulary [0, ${V})`);
      });
      const T = Math.max(...rows.map((r) => r.length));
      return {
        masks: rows.map((r) => [
          ...new Array<number>(T - r.length).fill(0),
          ...new Array<number>(r.length).fill(1),
        ]),
        promptIds: rows,
      };
    }
    const [B, T, hidden] = input.inputsEmbeds.shape;
    if (hidden !== this.model.hiddenSize) {
      throw new Error(
        `generate: inputsEmbeds is [${input.inputsEmbeds.shape}], the model's hidden size is ${this.model.hiddenSize}`,
      );
    }
    const mask = input.attentionMask;
    if (mask && (mask.shape[0] !== B || mask.shape[1] !== T)) {
      throw new Error(`generate: attentionMask is [${mask.shape}], expected [${B}, ${T}] like inputsEmbeds`);
    }
    const masks = maskValues
      ? maskValues.map((r) => r.map((m) => (m ? 1 : 0)))
      : Array.from({ length: B }, () => new Array<number>(T).fill(1));
    if (input.promptIds && input.promptIds.length !== B) {
      throw new Error(`generate: promptIds has ${input.promptIds.length} rows, inputsEmbeds ${B}`);
    }
    return { masks, promptIds: input.promptIds ?? masks.map(() => []) };
  }

  get done(): boolean {
    return this.reasons.every((r) => r !== null);
  }

  /** Next-token logits [B, vocab] (a tensor the caller reads and disposes) after feeding `embeds` ([B, T, hidden]). */
  private logits(
    embeds: () => tf.Tensor3D,
    masks: number[][] | null,
    positions: number[][] | null,
  ): tf.Tensor {
    return tf.tidy(() => {
      const x = embeds();
      const attentionMask = masks ? tf.tensor2d(masks, undefined, 'int32') : undefined;
      const positionIds = positions ? tf.tensor2d(positions, undefined, 'int32') : undefined;
      const { hidden } = this.model.forward({
        inputsEmbeds: x,
        attentionMask,
        positionIds,
        cache: this.cache,
      });
      const T = hidden.shape[1];
      return this.model.lmHead(tf.slice(hidden, [0, T - 1, 0], [-1, 1, -1]));
    });
  }

  /** Queues the next model call (prefill first) and returns its logits tensor, not yet read. */
  private forwardStep(): tf.Tensor {
    const masks = this.maskRows;
    if (!this.prefilled) {
      this.prefilled = true;
      const input = this.input;
      const embeds =
        'inputIds' in input
          ? () => this.model.embed(tf.tensor2d(this.paddedIds(input.inputIds), undefined, 'int32'))
          : () => input.inputsEmbeds;
      return this.logits(embeds, masks, masks ? masks.map(positionsFromMask) : null);
    }
    const positions = masks ? this.nextPosition.map((p) => [p]) : null;
    for (let row = 0; row < this.batch; row++) this.nextPosition[row]++;
    if (masks) for (const row of masks) row.push(1); // finished rows keep attending too, as HF does
    const ids = this.lastTokens.map((t) => [t]);
    return this.logits(() => this.model.embed(tf.tensor2d(ids, undefined, 'int32')), masks, positions);
  }

  private paddedIds(rows: number[][]): number[][] {
    const T = Math.max(...rows.map((r) => r.length));
    return rows.map((r) => [...new Array<number>(T - r.length).fill(0), ...r]);
  }

  /** One model call and one token per unfinished row, reading the logits synchronously. */
  step(): GeneratedToken[] {
    const logits = this.forwardStep();
    try {
      return this.chooseTokens(logits.dataSync() as Float32Array);
    } finally {
      logits.dispose();
    }
  }

  /** step() with an awaited read: the same tokens, and the only form tfjs-webgpu can run in Node. */
  async stepAsync(): Promise<GeneratedToken[]> {
    const logits = this.forwardStep();
    try {
      return this.chooseTokens((await logits.data()) as Float32Array);
    } finally {
      logits.dispose();
    }
  }

  /** Processors, choice and stopping per unfinished row, on the read logits [B × vocab]. */
  private chooseTokens(all: Float32Array): GeneratedToken[] {
    const V = this.model.vocabSize;
    const out: GeneratedToken[] = [];
    for (let row = 0; row < this.batch; row++) {
      if (this.reasons[row] !== null) continue;
      const scores = this.processors[row].apply(all.subarray(row * V, (row + 1) * V), this.history[row]);
      const tokenId = this.opts.doSample ? sampleToken(scores, this.random) : greedyToken(scores);
      this.history[row].push(tokenId);
      this.generated[row].push(tokenId);
      this.lastTokens[row] = tokenId;
      const reason = this.stopping.check(this.generated[row]);
      const token: GeneratedToken = { row, tokenId };
      if (this.streams)
        token.text = this.streams[row].put(tokenId) + (reason ? this.streams[row].flush() : '');
      if (reason) {
        this.reasons[row] = reason;
        token.finishReason = reason;
        this.lastTokens[row] = this.opts.padTokenId ?? this.opts.eosTokenIds?.[0] ?? tokenId;
      }
      out.push(token);
    }
    return out;
  }

  result(): GenerateResult {
    const result: GenerateResult = { ids: this.generated, finishReason: this.reasons as StopReason[] };
    if (this.opts.decode) result.text = this.generated.map((ids) => this.opts.decode!(ids));
    return result;
  }

  dispose(): void {
    this.cache.dispose();
  }
}

function nextMacrotask(): Promise<void> {
  return new Promise((resolve) =>
    typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}

function maskValuesSync(input: GenerateInput): number[][] | undefined {
  return 'inputsEmbeds' in input ? (input.attentionMask?.arraySync() as number[][] | undefined) : undefined;
}

async function maskValuesAsync(input: GenerateInput): Promise<number[][] | undefined> {
  return 'inputsEmbeds' in input
    ? (input.attentionMask?.array() as Promise<number[][]> | undefined)
    : undefined;
}

/** Generate until every row hits EOS, a stop string or maxNewTokens (synchronous reads: cpu, wasm, tfjs-node). */
export function generate(model: CausalLM, input: GenerateInput, opts: GenerateOptions = {}): GenerateResult {
  const run = new GenerationRun(model, input, opts, maskValuesSync(input));
  try {
    while (!run.done) run.step();
    return run.result();
  } finally {
    run.dispose();
  }
}

/** generate() with every device read awaited: the same ids on every backend, and it runs on webgpu. */
export async function generateAsync(
  model: CausalLM,
  input: GenerateInput,
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const run = new GenerationRun(model, input, opts, await maskValuesAsync(input));
  try {
    while (!run.done) await run.stepAsync();
    return run.result();
  } finally {
    run.dispose();
  }
}

/**
 * Streaming generate: yields every new token (with its text when `decode` is given) as soon as it is chosen,
 * and returns the full result. Breaking out of the loop stops generation and frees the cache. Reads are
 * awaited, so it runs on webgpu too.
 */
export async function* generateStream(
  model: CausalLM,
  input: GenerateInput,
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, GenerateResult, undefined> {
  const run = new GenerationRun(model, input, opts, await maskValuesAsync(input));
  try {
    while (!run.done) {
      yield* await run.stepAsync();
      await nextMacrotask(); // let consumers and I/O run between steps
    }
    return run.result();
  } finally {
    run.dispose();
  }
}
