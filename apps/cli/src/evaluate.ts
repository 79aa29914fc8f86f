// Generation on a split and its scores: each assistant turn is answered from the conversation before it
// (earlier turns use the reference answers, as LLaVA's multi-turn evaluation does).
import { dirname } from 'node:path';
import {
  buildExample,
  type GenerateOptions,
  getTemplate,
  IGNORE_INDEX,
  LlavaForConditionalGeneration,
  parseRecord,
  readRecords,
  type Sample,
  type TemplateName,
  tf,
} from '@vistune/core';
import type { LoadedModel } from './runtime.js';

export interface EvalPrediction {
  id: string;
  turn: number;
  kind: string;
  question: string;
  prediction: string;
  reference: string;
  exactMatch: boolean;
}

export interface EvalOptions {
  data: string;
  imageFolder?: string;
  template: TemplateName;
  systemPrompt?: string;
  maxLength: number;
  limit?: number;
  generate: GenerateOptions;
  onPrediction?: (p: EvalPrediction, done: number) => void;
}

const ARTICLES = new Set(['a', 'an', 'the']);
const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};

/** VQAv2-style answer normalisation: lowercase, punctuation and articles removed, number words as digits. */
export function normaliseAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/(?<=\d),(?=\d)/g, '')
    .replace(/[^\p{L}\p{N}\s[\],.-]/gu, ' ')
    .replace(/\.(?!\d)/g, ' ')
    .split(/\s+/)
    .filter((w) => w && !ARTICLES.has(w))
    .map((w) => NUMBER_WORDS[w] ?? w)
    .join(' ');
}

/** Records of a LLaVA-format file, each with the `kind`/`category` field it may carry for per-kind scores. */
async function* evalSamples(
  file: string,
  imageFolder: string | undefined,
): AsyncGenerator<{ sample: Sample; kind: string }> {
  for await (const record of readRecords(file)) {
    if ('error' in record) continue;
    const r = parseRecord(record.value, record.location, { imageFolder: imageFolder ?? dirname(file) });
    if (!r.ok) continue;
    const raw = record.value as { kind?: unknown; category?: unknown; question_type?: unknown };
    const kind = [raw.kind, raw.category, raw.question_type].find((k) => typeof k === 'string') as
      | string
      | undefined;
    yield { sample: r.sample, kind: kind ?? 'all' };
  }
}

/** Prompt ids of a conversation ending in an assistant turn: everything before that turn's supervised run. */
function promptIds(inputIds: Int32Array, labels: Int32Array): number[] | null {
  let start = labels.length;
  while (start > 0 && labels[start - 1] !== IGNORE_INDEX) start--;
  return start === labels.length ? null : Array.from(inputIds.subarray(0, start));
}

export async function evaluate(loaded: LoadedModel, opts: EvalOptions): Promise<EvalPrediction[]> {
  const { model, processor, imageToken, tokenizer } = loaded;
  if (!(model instanceof LlavaForConditionalGeneration) || !processor || !imageToken) {
    throw new Error(`${loaded.dir}: vistune eval needs a multimodal (LLaVA) model folder`);
  }
  const template = getTemplate(
    opts.template,
    opts.systemPrompt === undefined ? {} : { systemPrompt: opts.systemPrompt },
  );
  const predictions: EvalPrediction[] = [];
  let samples = 0;
  for await (const { sample, kind } of evalSamples(opts.data, opts.imageFolder)) {
    if (opts.limit !== undefined && samples >= opts.limit) break;
    samples++;
    const pixels = await Promise.all(
      sample.images.map(async (path) => {
        const p = await processor.preprocess(path);
        return tf.tensor3d(p.pixelValues, [3, p.height, p.width]);
      }),
    );
    try {
      for (let k = 0; k < sample.turns.length; k++) {
        if (sample.turns[k].role !== 'assistant') continue;
        const built = buildExample(
          { ...sample, turns: sample.turns.slice(0, k + 1) },
          {
            tokenizer,
            template,
            imageToken: { id: imageToken.id, slots: imageToken.slots },
            maxLength: opts.maxLength,
          },
        );
        if (!built.ok) continue;
        const ids = promptIds(built.example.inputIds, built.example.labels);
        if (!ids) continue;
        const input = tf.tensor2d([ids], [1, ids.length], 'int32');
        const result = model.generate(input, { image: [pixels] }, opts.generate);
        input.dispose();
        const prediction = tokenizer.decode(result.ids[0], { skipSpecialTokens: true }).trim();
        const reference = sample.turns[k].text.trim();
        const question = sample.turns[k - 1]?.text.replaceAll('<image>', '').trim() ?? '';
        const p: EvalPrediction = {
          id: sample.id,
          turn: k,
          kind,
          question,
          prediction,
          reference,
          exactMatch: normaliseAnswer(prediction) === normaliseAnswer(reference),
        };
        predictions.push(p);
        opts.onPrediction?.(p, samples);
      }
    } finally {
      tf.dispose(pixels);
    }
  }
  return predictions;
}

/** Exact-match accuracy per kind and overall. */
export function scoreByKind(
  predictions: readonly EvalPrediction[],
): { kind: string; n: number; exactMatch: number }[] {
  const groups = new Map<string, EvalPrediction[]>();
  for (const p of predictions) groups.set(p.kind, [...(groups.get(p.kind) ?? []), p]);
  const row = (kind: string, ps: readonly EvalPrediction[]) => ({
    kind,
    n: ps.length,
    exactMatch: ps.length ? ps.filter((p) => p.exactMatch).length / ps.length : 0,
  });
  return [
    ...[...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, ps]) => row(k, ps)),
    row('overall', predictions),
  ];
}
