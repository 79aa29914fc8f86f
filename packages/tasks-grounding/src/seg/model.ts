// A LISA-style model from any MultimodalModel with an image modality: [SEG] added to the tokenizer, the LLM's
// embedding rows grown to match when needed, and the `lisa_seg` head added with model.addHead. Plus
// inference: masks for a given text, and generate-then-segment as LISA evaluates.
import {
  LlamaForCausalLM,
  llamaConfigToHf,
  type MediaInputs,
  type MultimodalBatch,
  MultimodalModel,
  modelFamily,
  type Registry,
  type Tokenizer,
  tf,
  VISTUNE_MODEL_TYPE,
} from '@vistune/core';
import { resizeTokenEmbeddings } from '../vocab/index.js';
import type { LisaSegHeadInput } from './config.js';
import type { LisaSegHead, SegHeadOutput } from './head.js';
import { type OriginalFrame, toOriginalFrame } from './resample.js';

export const SEG_TOKEN = '[SEG]';

/** The `lisa_seg` head config without the fields attachLisaHead fills in. */
export type LisaSegHeadSettings = Omit<
  LisaSegHeadInput,
  'triggerTokenId' | 'llmHiddenSize' | 'visionHiddenSize'
>;

export interface AttachLisaHeadOptions {
  /** Head config (the registry fills the defaults); trigger id and sizes are filled in here. */
  head?: LisaSegHeadSettings;
  /** The mask token text (default [SEG]). */
  token?: string;
}

export interface LisaModel {
  model: MultimodalModel;
  head: LisaSegHead;
  segTokenId: number;
}

/**
 * Adds [SEG] to `tokenizer` (special), creates the `lisa_seg` head through `registry` (sized for the head's
 * modality's encoder) and adds it with `base.addHead`. The model returned is `base` itself, whatever its family
 * (a LLaVA keeps saving as a LLaVA), unless the tokenizer outgrew the LLM's vocabulary: resizing the
 * embeddings then needs a new model (see withVocabulary), and `base` must not be used afterwards.
 */
export async function attachLisaHead(
  base: MultimodalModel,
  tokenizer: Tokenizer,
  registry: Registry,
  opts: AttachLisaHeadOptions = {},
): Promise<LisaModel> {
  const token = opts.token ?? SEG_TOKEN;
  const modality = opts.head?.modality ?? 'image';
  const spec = base.modalities.get(modality);
  if (!spec)
    throw new Error(
      `attachLisaHead: the model has no "${modality}" modality (it has ${[...base.modalities.keys()].join(', ') || 'none'}): set head.modality`,
    );
  const [segTokenId] = tokenizer.addTokens([token], { special: true }) as [number];
  const head = (await registry.create(
    'head',
    {
      type: 'lisa_seg',
      ...opts.head,
      triggerTokenId: segTokenId,
      llmHiddenSize: base.llm.hiddenSize,
      visionHiddenSize: spec.encoder.hiddenSize,
    },
    { path: 'head' },
  )) as LisaSegHead;
  try {
    base.addHead(head);
  } catch (err) {
    head.dispose();
    throw err;
  }
  // The head is on base first, so a rebuilt model carries it (and its config) like base's other heads.
  const model =
    tokenizer.vocabSize > base.llm.vocabSize ? withVocabulary(base, tokenizer.vocabSize, registry) : base;
  return { model, head, segTokenId };
}

/**
 * `base` with its LLM's embedding and lm_head rows grown to `vocabSize` (HF mean init). The LLM's tables have
 * fixed shapes, so this is a new model holding the new LLM and base's modalities and heads; base's old LLM is
 * disposed. Any family can be the base: the new model takes the `vistune` family (any composition, saved
 * with every part named in config.json), with base's composition and the LLM's new vocab_size.
 */
export function withVocabulary(
  base: MultimodalModel,
  vocabSize: number,
  registry: Registry,
): MultimodalModel {
  if (!(base.llm instanceof LlamaForCausalLM))
    throw new Error(
      `resizing the vocabulary to ${vocabSize}: the LLM must be a LLaMA-family decoder (llama, qwen2, mistral); ` +
        'or give the model a vocab_size that already has room for the added tokens',
    );
  const llm = resizeTokenEmbeddings(base.llm, vocabSize);
  const model = new MultimodalModel({ llm, modalities: base.modalities, heads: base.heads });
  if (base.composition) {
    model.family = modelFamily(registry, VISTUNE_MODEL_TYPE);
    model.composition = {
      ...base.composition,
      llm: { type: base.composition.llm.type, config: llamaConfigToHf(llm.config) },
    };
  }
  base.llm.dispose();
  model.train(base.training);
  return model;
}

/** The last hidden states the head reads in `batch` ([K, llmHidden], sample-major), without running the head. */
export function triggerStates(
  model: MultimodalModel,
  head: LisaSegHead,
  batch: MultimodalBatch,
): tf.Tensor2D {
  return tf.tidy(() => {
    const embeds = model.embedInputs(batch.inputIds, batch.media, batch.attentionMask);
    const { hidden } = model.llm.forward({ inputsEmbeds: embeds, attentionMask: batch.attentionMask });
    const [B, T, H] = hidden.shape;
    const ids = batch.inputIds.dataSync();
    const rows: number[] = [];
    for (let i = 0; i < B * T; i++) {
      const p = (i % T) + head.readOffset;
      if (ids[i] === head.triggerTokenId && p >= 0) rows.push(Math.floor(i / T) * T + p);
    }
    return tf.gather(tf.reshape(hidden, [B * T, H]), tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
  });
}

/** Mask logits [K, H, W] (processed frame) for the [SEG] tokens already in `inputIds`, or null when none. */
export function segmentText(
  model: MultimodalModel,
  head: LisaSegHead,
  inputIds: tf.Tensor2D,
  media: MediaInputs,
  attentionMask?: tf.Tensor2D,
): tf.Tensor3D | null {
  const out = model.forward({ inputIds, media, attentionMask }, { logits: false });
  const result = out.heads[head.name]?.output as SegHeadOutput | undefined;
  const logits = result?.logits ?? null;
  // forward's tidy kept every head output: release all but the logits handed back.
  for (const r of Object.values(out.heads)) {
    const o = r.output as Record<string, tf.Tensor>;
    tf.dispose(Object.values(o).filter((t) => t !== logits));
    if (r.loss) r.loss.dispose();
  }
  for (const t of [out.loss, out.lmLoss, out.logits]) t?.dispose();
  return logits;
}

export interface GenerateSegmentation {
  /** Generated ids (prompt excluded) and their text when `decode` was given. */
  ids: number[];
  text?: string;
  /** One binary mask per generated [SEG], in the original frame (row-major, 1 = object). */
  masks: Uint8Array[];
}

/**
 * LISA's inference for one sample: generate the answer, then run the prompt + answer through the model once
 * more and decode a mask at every [SEG] the answer holds (the head reads states of the full sequence).
 */
export function generateAndSegment(
  model: MultimodalModel,
  head: LisaSegHead,
  promptIds: readonly number[],
  media: MediaInputs,
  frame: OriginalFrame,
  opts: { maxNewTokens?: number; eosTokenIds?: number[]; decode?: (ids: readonly number[]) => string } = {},
): GenerateSegmentation {
  const prompt = tf.tensor2d([promptIds as number[]], undefined, 'int32');
  let ids: number[];
  let text: string | undefined;
  try {
    const result = model.generate(prompt, media, opts);
    ids = result.ids[0] ?? [];
    text = result.text?.[0];
  } finally {
    prompt.dispose();
  }
  return { ids, text, masks: segmentAnswer(model, head, promptIds, ids, media, frame) };
}

/**
 * Masks of the [SEG] tokens of an answer: runs prompt + answer through the model once (the head reads states
 * of the full sequence, as LISA's inference) and thresholds the logits at 0 in the original frame. One binary
 * mask (row-major, frame.width × frame.height) per [SEG] of the answer; none when it has no [SEG].
 */
export function segmentAnswer(
  model: MultimodalModel,
  head: LisaSegHead,
  promptIds: readonly number[],
  answerIds: readonly number[],
  media: MediaInputs,
  frame: OriginalFrame,
): Uint8Array[] {
  if (!answerIds.includes(head.triggerTokenId)) return [];
  const full = tf.tensor2d([[...promptIds, ...answerIds]], undefined, 'int32');
  try {
    const logits = segmentText(model, head, full, media);
    if (!logits) return [];
    const [, H, W] = logits.shape;
    const original = tf.tidy(() => tf.greater(toOriginalFrame(logits, [H, W], frame), 0));
    logits.dispose();
    const values = original.dataSync();
    original.dispose();
    const size = frame.width * frame.height;
    // The prompt's own [SEG]s (if any) come first: keep the answer's, the last ones.
    const count = answerIds.filter((id) => id === head.triggerTokenId).length;
    const all = Array.from({ length: values.length / size }, (_, k) =>
      Uint8Array.from(values.subarray(k * size, (k + 1) * size)),
    );
    return all.slice(all.length - count);
  } finally {
    full.dispose();
  }
}
