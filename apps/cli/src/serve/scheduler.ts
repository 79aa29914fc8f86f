// Queues chat requests and runs them on the one model: requests waiting together with the same sampling
// settings go through one left-padded forward (as the demo's batched evaluation does), each row streaming its
// own tokens. A cancelled row is dropped from the output; a batch whose rows are all cancelled stops at once.
import {
  type AnswerAnnotation,
  type AnswerAnnotator,
  findStopString,
  generateStream,
  type StopReason,
  tf,
} from '@vistune/core';
import type { PreparedRequest, VisionLanguageModel, VlmGenerateOptions } from '../api/model.js';
import { ApiError } from './protocol.js';

export interface JobResult {
  text: string;
  ids: number[];
  finishReason: StopReason | 'length';
  promptTokens: number;
  annotations: AnswerAnnotation[];
}

export interface JobRequest {
  prepared: PreparedRequest;
  options: VlmGenerateOptions;
  /** Called with each newly visible piece of the answer (stop strings held back until ruled out). */
  onText?: (text: string) => void;
  signal?: AbortSignal;
}

interface Job extends JobRequest {
  maxNewTokens: number;
  key: string;
  ids: number[];
  text: string;
  sent: number;
  done: boolean;
  resolve: (result: JobResult) => void;
  reject: (err: unknown) => void;
}

export interface SchedulerOptions {
  /** Most requests in one forward (1 = no batching). */
  maxBatch: number;
  /** Most requests waiting; more are refused with 503. */
  maxQueue: number;
  /** Annotators run on every answer besides the model's heads (serve --codec). */
  annotators?: readonly AnswerAnnotator[];
}

export interface SchedulerStats {
  queued: number;
  running: number;
  completed: number;
  cancelled: number;
  failed: number;
  batches: number;
  largestBatch: number;
  generatedTokens: number;
}

/** Requests batch together only when one generation run can serve them all (same options but length). */
function batchKey(options: VlmGenerateOptions): string | null {
  // A seeded sample depends on the random stream it shares with its batch: run it alone to keep it reproducible.
  if (options.doSample && options.seed !== undefined) return null;
  const { maxNewTokens: _, ...rest } = options;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

const cancelled = () => new ApiError(499, 'the request was cancelled', null, 'cancelled');

export class Scheduler {
  private readonly queue: Job[] = [];
  private running: Job[] = [];
  private loop: Promise<void> | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats: SchedulerStats = {
    queued: 0,
    running: 0,
    completed: 0,
    cancelled: 0,
    failed: 0,
    batches: 0,
    largestBatch: 0,
    generatedTokens: 0,
  };

  constructor(
    private readonly vlm: VisionLanguageModel,
    private readonly opts: SchedulerOptions,
  ) {}

  /** Batching needs every adapter to work per row; adapters acting inside the decoder run one request at a time. */
  private get batchLimit(): number {
    const hooked = [...this.vlm.model.modalities.values()].some(
      (m) => m.adapter.blockHook || m.adapter.usesText,
    );
    return hooked ? 1 : this.opts.maxBatch;
  }

  /** Queues a prepared request (the scheduler owns its media tensors from here on). */
  submit(request: JobRequest): Promise<JobResult> {
    const release = () => tf.dispose(Object.values(request.prepared.media).flat(2));
    if (this.closed) {
      release();
      return Promise.reject(new ApiError(503, 'the server is shutting down', null, 'shutting_down'));
    }
    if (this.queue.length >= this.opts.maxQueue) {
      release();
      return Promise.reject(
        new ApiError(
          503,
          `the server's queue is full (${this.opts.maxQueue} requests, --max-queue); retry later`,
          null,
          'queue_full',
        ),
      );
    }
    return new Promise<JobResult>((resolve, reject) => {
      const job: Job = {
        ...request,
        maxNewTokens: request.options.maxNewTokens ?? 128,
        key: batchKey(request.options) ?? `alone:${Math.random()}`,
        ids: [],
        text: '',
        sent: 0,
        done: false,
        resolve,
        reject,
      };
      request.signal?.addEventListener('abort', () => this.cancel(job), { once: true });
      this.queue.push(job);
      this.stats.queued = this.queue.length;
      this.loop ??= this.drainQueue().finally(() => {
        this.loop = null;
        for (const wake of this.idleWaiters.splice(0)) wake();
      });
    });
  }

  private cancel(job: Job): void {
    if (job.done) return;
    job.done = true;
    this.stats.cancelled++;
    const at = this.queue.indexOf(job);
    if (at >= 0) {
      this.queue.splice(at, 1);
      this.stats.queued = this.queue.length;
      tf.dispose(Object.values(job.prepared.media).flat(2));
    }
    job.reject(cancelled());
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length) {
      const first = this.queue[0];
      const limit = this.batchLimit;
      const batch = this.queue.filter((j) => j.key === first.key).slice(0, limit);
      for (const job of batch) this.queue.splice(this.queue.indexOf(job), 1);
      this.stats.queued = this.queue.length;
      this.running = batch;
      this.stats.running = batch.length;
      try {
        await this.runBatch(batch);
      } catch (err) {
        for (const job of batch) {
          if (job.done) continue;
          job.done = true;
          this.stats.failed++;
          job.reject(err);
        }
      } finally {
        tf.dispose(batch.flatMap((j) => Object.values(j.prepared.media).flat(2)));
        this.running = [];
        this.stats.running = 0;
      }
    }
  }

  /** The answer text a client may see so far: cut at a stop string, holding back what could start one. */
  private visible(job: Job, finished: boolean): string {
    const stops = job.options.stopStrings ?? [];
    if (!stops.length) return job.text;
    const match = findStopString(job.text, stops);
    if (match) return job.text.slice(0, match.index);
    if (finished) return job.text;
    const hold = Math.max(...stops.map((s) => s.length)) - 1;
    return job.text.slice(0, Math.max(job.sent, job.text.length - hold));
  }

  private emit(job: Job, finished: boolean): void {
    const shown = this.visible(job, finished);
    if (shown.length > job.sent) {
      job.onText?.(shown.slice(job.sent));
      job.sent = shown.length;
    }
  }

  private async runBatch(batch: Job[]): Promise<void> {
    const live = batch.filter((j) => !j.done);
    if (!live.length) return;
    const { model, tokenizer } = this.vlm;
    const pad = tokenizer.padTokenId ?? 0;
    const width = Math.max(...live.map((j) => j.prepared.inputIds.length));
    const padding = (j: Job) => width - j.prepared.inputIds.length;
    const media: Record<string, tf.Tensor[][]> = {};
    for (const name of this.vlm.modalities.keys())
      if (live.some((j) => j.prepared.media[name]))
        media[name] = live.map((j) => [...(j.prepared.media[name]?.[0] ?? [])]);
    const ids = tf.tensor2d(
      live.map((j) => [...new Array<number>(padding(j)).fill(pad), ...j.prepared.inputIds]),
      [live.length, width],
      'int32',
    );
    const mask = tf.tensor2d(
      live.map((j) => [...new Array<number>(padding(j)).fill(0), ...j.prepared.inputIds.map(() => 1)]),
      [live.length, width],
      'int32',
    );
    let prefill: { inputsEmbeds: tf.Tensor3D; attentionMask: tf.Tensor2D };
    try {
      prefill = model.prepareGeneration(ids, media, mask);
    } finally {
      tf.dispose([ids, mask]);
    }
    this.stats.batches++;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, live.length);
    const reasons = new Map<Job, StopReason | 'length'>();
    const stream = generateStream(
      model.llm,
      { ...prefill, promptIds: live.map((j) => j.prepared.inputIds) },
      this.vlm.generateOptions({
        ...live[0].options,
        maxNewTokens: Math.max(...live.map((j) => j.maxNewTokens)),
        padTokenId: pad,
      }),
    );
    try {
      for await (const token of stream) {
        const job = live[token.row];
        if (!job.done && !reasons.has(job)) {
          job.ids.push(token.tokenId);
          job.text += token.text ?? '';
          this.stats.generatedTokens++;
          const reason = token.finishReason ?? (job.ids.length >= job.maxNewTokens ? 'length' : undefined);
          if (reason) reasons.set(job, reason);
          else this.emit(job, false);
        }
        // Every row finished or cancelled: stop the run instead of decoding for nobody.
        if (live.every((j) => j.done || reasons.has(j))) break;
      }
    } finally {
      tf.dispose([prefill.inputsEmbeds, prefill.attentionMask]);
    }
    for (const job of live) {
      if (job.done) continue;
      job.text = tokenizer.decode(job.ids, { skipSpecialTokens: true });
      this.emit(job, true);
      const annotations = await this.vlm.annotate(
        {
          model,
          promptIds: job.prepared.inputIds,
          answerIds: job.ids,
          text: job.text,
          media: job.prepared.media,
          processed: job.prepared.processed,
        },
        this.opts.annotators,
      );
      job.done = true;
      this.stats.completed++;
      job.resolve({
        text: this.visible(job, true),
        ids: job.ids,
        finishReason: reasons.get(job) ?? 'length',
        promptTokens: job.prepared.inputIds.length,
        annotations,
      });
    }
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.loop) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new requests; waits up to `graceMs` for the queued and running ones, then cancels the rest. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.idle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    for (const job of [...this.queue, ...this.running]) this.cancel(job);
    await this.idle();
  }
}
