// Generation on a split and its scores, for any model and media kind: each assistant turn is answered from the
// conversation before it (earlier turns use the reference answers — teacher-forced, as LLaVA's multi-turn
// evaluation does), and every answer is scored by the registered metrics (kind `metric`, AnswerMetric).
import { dirname } from 'node:path';
import {
  type AnswerMetric,
  buildExample,
  type ConversationTemplate,
  countMedia,
  type DataStats,
  describeLocation,
  type GenerateOptions,
  IGNORE_INDEX,
  mediaOf,
  normaliseAnswer,
  type ProcessedMedia,
  parseRecord,
  readRecords,
  recordSkip,
  type Sample,
  tf,
} from '@vistune/core';
import type { VisionLanguageModel } from './api/model.js';

export { normaliseAnswer };

export interface EvalPrediction {
  id: string;
  turn: number;
  kind: string;
  question: string;
  prediction: string;
  reference: string;
  exactMatch: boolean;
  /** Per metric name: this answer's score, when the metric applies to it. */
  scores: Record<string, number>;
}

export interface EvalOptions {
  data: string;
  imageFolder?: string;
  template: ConversationTemplate;
  maxLength: number;
  limit?: number;
  generate: Omit<GenerateOptions, 'decode'>;
  metrics: readonly AnswerMetric[];
  /** Receives every record read and every record or turn skipped, with its reason and place. */
  stats: DataStats;
  /** Earlier assistant turns are the model's own answers instead of the references (default: teacher-forced). */
  freeRunning?: boolean;
  onPrediction?: (p: EvalPrediction, done: number) => void;
}

/** Records of a LLaVA-format file, each with the `kind`/`category` field it may carry for per-kind scores. */
async function* evalSamples(
  vlm: VisionLanguageModel,
  file: string,
  imageFolder: string | undefined,
  stats: DataStats,
): AsyncGenerator<{ sample: Sample; kind: string; record: unknown }> {
  const mediaKinds = [...vlm.modalities.values()].map((m) => ({ name: m.kind.name, marker: m.kind.marker }));
  for await (const record of readRecords(file)) {
    stats.samplesRead++;
    if ('error' in record) {
      recordSkip(stats, record.reason, `${describeLocation(record.location)}: ${record.error}`, record);
      continue;
    }
    const r = parseRecord(record.value, record.location, {
      imageFolder: imageFolder ?? dirname(file),
      mediaKinds,
    });
    if (!r.ok) {
      recordSkip(stats, r.reason, r.message, { location: r.location, id: r.id });
      continue;
    }
    stats.samplesUsed++;
    countMedia(stats, mediaOf(r.sample));
    const raw = record.value as { kind?: unknown; category?: unknown; question_type?: unknown };
    const kind = [raw.kind, raw.category, raw.question_type].find((k) => typeof k === 'string') as
      | string
      | undefined;
    yield { sample: r.sample, kind: kind ?? '', record: record.value };
  }
}

/** Prompt ids of a conversation ending in an assistant turn: everything before that turn's supervised run. */
function promptIds(inputIds: Int32Array, labels: Int32Array): number[] | null {
  let start = labels.length;
  while (start > 0 && labels[start - 1] !== IGNORE_INDEX) start--;
  return start === labels.length ? null : Array.from(inputIds.subarray(0, start));
}

export async function evaluate(vlm: VisionLanguageModel, opts: EvalOptions): Promise<EvalPrediction[]> {
  const { template } = opts;
  const predictions: EvalPrediction[] = [];
  let samples = 0;
  for await (const { sample, kind, record } of evalSamples(vlm, opts.data, opts.imageFolder, opts.stats)) {
    if (opts.limit !== undefined && samples >= opts.limit) break;
    samples++;
    const processed: Record<string, ProcessedMedia[]> = {};
    const mediaTokens: Record<string, { id: number; slots: number; marker: string }> = {};
    try {
      for (const [kindName, paths] of Object.entries(mediaOf(sample))) {
        const modality = vlm.modalityFor(kindName);
        if (!modality.processor) throw new Error(`${vlm.dir}: no processor for ${kindName} items`);
        processed[modality.name] = [];
        for (const path of paths) processed[modality.name].push(await modality.processor.process(path));
        const first = processed[modality.name][0];
        mediaTokens[kindName] = {
          id: modality.placeholderTokenId,
          slots: first ? vlm.model.slotsPerItem(modality.name, first.tensor.shape) : 1,
          marker: modality.kind.marker,
        };
      }
      for (const m of vlm.modalities.values())
        mediaTokens[m.kind.name] ??= { id: m.placeholderTokenId, slots: 1, marker: m.kind.marker };
      const media = Object.fromEntries(
        Object.entries(processed).map(([name, list]) => [name, [list.map((p) => p.tensor)]]),
      );
      // Free-running: each earlier assistant turn is replaced by what the model answered there.
      const turns = [...sample.turns];
      for (let k = 0; k < sample.turns.length; k++) {
        if (sample.turns[k].role !== 'assistant') continue;
        const built = buildExample(
          { ...sample, turns: turns.slice(0, k + 1) },
          { tokenizer: vlm.tokenizer, template, mediaTokens, maxLength: opts.maxLength },
        );
        if (!built.ok) {
          recordSkip(opts.stats, built.reason, `${sample.id} turn ${k}: ${built.message}`, { id: sample.id });
          continue;
        }
        const ids = promptIds(built.example.inputIds, built.example.labels);
        if (!ids) continue;
        // Prompt tokens fed, and the reference answer's tokens scored (what "supervised" means in eval).
        opts.stats.totalTokens += ids.length;
        opts.stats.supervisedTokens += built.example.inputIds.length - ids.length;
        const input = tf.tensor2d([ids], [1, ids.length], 'int32');
        const result = await vlm.model.generateAsync(input, media, vlm.generateOptions(opts.generate));
        input.dispose();
        const prediction = vlm.tokenizer.decode(result.ids[0], { skipSpecialTokens: true }).trim();
        const reference = sample.turns[k].text.trim();
        const markers = [...vlm.modalities.values()].map((m) => m.kind.marker);
        const question = markers
          .reduce((text, marker) => text.replaceAll(marker, ''), sample.turns[k - 1]?.text ?? '')
          .trim();
        const scores: Record<string, number> = {};
        for (const metric of opts.metrics) {
          const score = metric.score({ prediction, reference, question, record, processed });
          if (score !== undefined) scores[metric.name] = score;
        }
        const p: EvalPrediction = {
          id: sample.id,
          turn: k,
          kind,
          question,
          prediction,
          reference,
          exactMatch: normaliseAnswer(prediction) === normaliseAnswer(reference),
          scores,
        };
        predictions.push(p);
        if (opts.freeRunning) turns[k] = { ...turns[k], text: prediction };
        opts.onPrediction?.(p, samples);
      }
    } finally {
      tf.dispose(Object.values(processed).flatMap((list) => list.map((p) => p.tensor)));
    }
  }
  return withQuestionTemplates(predictions);
}

/** Words that occur in at least this share of the questions belong to the question templates. */
const TEMPLATE_WORD_SHARE = 0.05;

/**
 * Records without a kind field are grouped by question template: the question's frequent words (those in ≥ 5 %
 * of the questions) in order, every run of other words as `…` ("how many … are there?").
 */
export function withQuestionTemplates(predictions: readonly EvalPrediction[]): EvalPrediction[] {
  const words = (q: string) => q.toLowerCase().match(/[\p{L}\p{N}]+|[?]/gu) ?? [];
  const share = new Map<string, number>();
  for (const p of predictions)
    for (const w of new Set(words(p.question))) share.set(w, (share.get(w) ?? 0) + 1);
  const min = Math.max(2, TEMPLATE_WORD_SHARE * predictions.length);
  return predictions.map((p) => {
    if (p.kind) return p;
    const key = words(p.question)
      .map((w) => ((share.get(w) ?? 0) >= min ? w : '…'))
      .filter((w, i, all) => w !== '…' || all[i - 1] !== '…')
      .join(' ')
      .replace(/ \?$/, '?');
    return { ...p, kind: key || 'all' };
  });
}

export interface KindScore {
  kind: string;
  n: number;
  exactMatch: number;
  /** Per metric: the mean over the answers it applied to, and how many those were. */
  metrics: Record<string, { mean: number; n: number }>;
}

/** Exact match and every metric's mean per kind and overall. */
export function scoreByKind(predictions: readonly EvalPrediction[]): KindScore[] {
  const groups = new Map<string, EvalPrediction[]>();
  for (const p of predictions) groups.set(p.kind, [...(groups.get(p.kind) ?? []), p]);
  const row = (kind: string, ps: readonly EvalPrediction[]): KindScore => {
    const metrics: Record<string, { mean: number; n: number }> = {};
    for (const p of ps)
      for (const [name, v] of Object.entries(p.scores)) {
        const m = metrics[name] ?? { mean: 0, n: 0 };
        m.mean += v;
        m.n++;
        metrics[name] = m;
      }
    for (const m of Object.values(metrics)) m.mean /= m.n;
    return {
      kind,
      n: ps.length,
      exactMatch: ps.length ? ps.filter((p) => p.exactMatch).length / ps.length : 0,
      metrics,
    };
  };
  return [
    ...[...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, ps]) => row(k, ps)),
    row('overall', predictions),
  ];
}
