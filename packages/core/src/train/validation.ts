// Held-out loss during training: the mean LM loss over the same validation batches each time (the source is
// rewound to its start), in eval mode (no dropout) and outside any gradient tape, so nothing about the run
// changes. The shuffled-media control scores the same batches with each sample's media swapped for another
// sample's: a model that reads its media loses clearly more there than on the true pairs.
import * as tf from '@tensorflow/tfjs-core';
import { disposeMultimodalBatch } from '../data/loader.js';
import type { BatchSource, BatchSourceState } from '../data/types.js';
import type { MediaInputs, MultimodalBatch } from '../multimodal/model.js';
import { Rng } from '../nn/rng.js';
import { supervisedTokens } from './stage.js';
import type { TrainableModel } from './trainer.js';

/** Batches whose media are permuted together: bounds the memory held for the control. */
const SHUFFLE_WINDOW_BATCHES = 8;

export interface ValidationOptions {
  /** Batches scored per pass (the first ones of the source); null = every batch. */
  batches: number | null;
  /** Also score the batches with the media shuffled across samples. */
  shuffledControl: boolean;
  /** Seed of the media permutation (the same every pass, so passes compare). */
  seed: number;
}

export interface ValidationResult {
  /** Mean LM loss per supervised token. */
  loss: number;
  /** The same on media-shuffled batches; null without the control or when no two samples could swap media. */
  shuffledLoss: number | null;
  batches: number;
  /** Supervised tokens scored. */
  tokens: number;
  /** Samples whose media came from another sample in the control. */
  shuffledSamples: number;
  samples: number;
}

/** Items' count and shapes per modality: two samples may swap media only when theirs agree. */
function mediaSignature(media: MediaInputs, sample: number): string | null {
  const parts: string[] = [];
  for (const [name, perSample] of Object.entries(media)) {
    const items = perSample[sample] ?? [];
    if (items.length) parts.push(`${name}:${items.map((t) => t.shape.join('x')).join(',')}`);
  }
  return parts.length ? parts.join(';') : null;
}

/**
 * For every sample of the window (batch, sample), the sample whose media it gets: a seeded random cycle
 * (Sattolo) inside each group of samples with the same media signature, so no sample keeps its own.
 */
export function mediaPermutation(batches: readonly MultimodalBatch[], seed: number): Map<string, string> {
  const groups = new Map<string, string[]>();
  batches.forEach((batch, b) => {
    const media = batch.media ?? {};
    for (let s = 0; s < batch.inputIds.shape[0]; s++) {
      const signature = mediaSignature(media, s);
      if (signature === null) continue;
      groups.set(signature, [...(groups.get(signature) ?? []), `${b}/${s}`]);
    }
  });
  const rng = new Rng(seed);
  const partner = new Map<string, string>();
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const order = [...members];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.nextFloat() * i); // j < i: a single cycle, no fixed point
      [order[i], order[j]] = [order[j], order[i]];
    }
    // order is a cyclic arrangement: each member takes the media of the one after it.
    order.forEach((key, i) => {
      partner.set(key, order[(i + 1) % order.length]);
    });
  }
  return partner;
}

/** `batch` with each sample's media replaced by its partner's (tensors shared with the window's batches). */
function withPartnerMedia(
  batches: readonly MultimodalBatch[],
  b: number,
  partner: ReadonlyMap<string, string>,
): MultimodalBatch {
  const batch = batches[b];
  const media: Record<string, (readonly tf.Tensor[])[]> = {};
  for (const [name, perSample] of Object.entries(batch.media ?? {})) {
    media[name] = perSample.map((items, s) => {
      const from = partner.get(`${b}/${s}`);
      if (!from) return items;
      const [pb, ps] = from.split('/').map(Number);
      return batches[pb].media?.[name]?.[ps] ?? items;
    });
  }
  return { ...batch, media };
}

/** LM loss of one batch (the model's lmLoss when it reports heads' losses apart) and its supervised tokens. */
async function batchLoss(
  model: TrainableModel,
  batch: MultimodalBatch,
): Promise<{ loss: number; tokens: number }> {
  const tokens = supervisedTokens(batch) ?? 0;
  if (tokens === 0) return { loss: 0, tokens: 0 };
  const value = tf.tidy(() => {
    const out = model.forward(batch, { logits: false });
    const loss = out.lmLoss ?? out.loss;
    if (!loss)
      throw new Error('validation: the model returned no loss (does the validation data carry labels?)');
    return loss;
  });
  const loss = (await value.data())[0]; // awaited: webgpu has no sync read
  value.dispose();
  return { loss, tokens };
}

/** Scores a validation source; each pass starts from the source's first batch. */
export class Validator {
  private readonly start: BatchSourceState;

  constructor(
    readonly source: BatchSource,
    readonly opts: ValidationOptions,
  ) {
    this.start = source.state();
  }

  /** One pass over the validation batches; the model's train/eval mode is restored afterwards. */
  async run(model: TrainableModel): Promise<ValidationResult> {
    const wasTraining = model.training;
    model.eval();
    this.source.restore(this.start);
    const limit = this.opts.batches ?? this.source.length;
    const sums = { loss: 0, shuffled: 0, tokens: 0, batches: 0, samples: 0, shuffledSamples: 0 };
    try {
      while (sums.batches < limit) {
        const window: MultimodalBatch[] = [];
        try {
          while (window.length < SHUFFLE_WINDOW_BATCHES && sums.batches < limit) {
            const batch = await this.source.next();
            if (!batch) break;
            window.push(batch);
            sums.batches++;
          }
          if (window.length === 0) break;
          await this.score(model, window, sums);
        } finally {
          for (const batch of window) disposeMultimodalBatch(batch);
        }
        if (window.length < SHUFFLE_WINDOW_BATCHES && sums.batches < limit) break; // the source ran out
      }
    } finally {
      if (wasTraining) model.train();
    }
    if (sums.tokens === 0)
      throw new Error(
        `validation: its ${sums.batches} batch(es) hold no supervised token: check data.val (labels, truncation by data.maxLength)`,
      );
    return {
      loss: sums.loss / sums.tokens,
      shuffledLoss:
        this.opts.shuffledControl && sums.shuffledSamples > 0 ? sums.shuffled / sums.tokens : null,
      batches: sums.batches,
      tokens: sums.tokens,
      shuffledSamples: sums.shuffledSamples,
      samples: sums.samples,
    };
  }

  private async score(
    model: TrainableModel,
    window: readonly MultimodalBatch[],
    sums: { loss: number; shuffled: number; tokens: number; samples: number; shuffledSamples: number },
  ): Promise<void> {
    for (const batch of window) {
      const { loss, tokens } = await batchLoss(model, batch);
      sums.loss += loss * tokens;
      sums.tokens += tokens;
      sums.samples += batch.inputIds.shape[0];
    }
    if (!this.opts.shuffledControl) return;
    const partner = mediaPermutation(window, this.opts.seed);
    sums.shuffledSamples += partner.size;
    for (let b = 0; b < window.length; b++) {
      const { loss, tokens } = await batchLoss(model, withPartnerMedia(window, b, partner));
      sums.shuffled += loss * tokens;
    }
  }
}
