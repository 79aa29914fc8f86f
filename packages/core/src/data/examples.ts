// Sample → training example: template segments → token ids and labels built together, each `<image>`
// expanded to its placeholder run, truncation that never cuts an image, and a supervised-token check.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { describeLocation, type RecordLocation, type Sample } from './samples.js';
import type { SkipReason } from './stats.js';
import {
  type ConversationTemplate,
  getTemplate,
  type Segment,
  TemplateMismatchError,
  type TemplateName,
} from './templates.js';
import type { HeadTargets, HeadTargetsReader } from './types.js';

/** The ignored label (HF / PyTorch cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface ImageTokenSpec {
  /** Placeholder token id (e.g. 32000 for `<image>` in llava-hf). */
  id: number;
  /** Placeholders per image: the slots the encoder + adapter produce (576 for CLIP-L/336, 16 in the fixture). */
  slots: number;
}

export interface BuildExampleOptions {
  tokenizer: Tokenizer;
  template: ConversationTemplate | TemplateName;
  imageToken: ImageTokenSpec;
  /** Longest sequence kept (after image expansion); longer examples are cut at the end. */
  maxLength: number;
}

export interface Example {
  id: string;
  location: RecordLocation;
  /** Token ids, each image expanded to `slots` placeholder ids. */
  inputIds: Int32Array;
  /** Same length; the id where supervised, else -100 (HF semantics: the loss shifts, labels[t+1] is predicted at t). */
  labels: Int32Array;
  /** Image paths, in placeholder order. */
  images: string[];
  /** Supervised positions (labels[0] never counts: nothing predicts it). */
  supervisedTokens: number;
  truncated: boolean;
  /** Segment boundaries where the tokens before the boundary changed once the next segment was appended. */
  retokenizedBoundaries: number;
  /** The last supervised token is a special token (EOS, `<|im_end|>`, …), so the model learns to stop. */
  endsWithSpecialToken: boolean;
  /** Head targets read from the record (see withHeadTargets): one per trigger token in inputIds, in order. */
  targets?: HeadTargets;
}

export type ExampleResult =
  | { ok: true; example: Example }
  | { ok: false; reason: SkipReason; message: string };

export interface TokenizedSegments {
  ids: number[];
  supervised: boolean[];
  retokenizedBoundaries: number;
}

/**
 * Tokenizes the growing prefix after each segment and assigns the new tokens to that segment, so the ids
 * are exactly the tokenization of the whole rendered text (what inference sees) and the prompt's ids are a
 * prefix of the example's. Where appending a segment changes tokens before it (a merge across the
 * boundary), the changed tokens take the new segment's flag; this is counted, never silent.
 * Cost: one encode per segment of the prefix so far (O(segments × length)).
 */
export function tokenizeSegments(
  tokenizer: Tokenizer,
  segments: readonly Segment[],
  leadingIds: readonly number[] = [],
): TokenizedSegments {
  let ids = [...leadingIds];
  let supervised = ids.map(() => false);
  let text = '';
  let retokenizedBoundaries = 0;
  for (const segment of segments) {
    if (segment.text === '') continue;
    text += segment.text;
    const next = [...leadingIds, ...tokenizer.encode(text, { addSpecialTokens: false })];
    let common = 0;
    while (common < ids.length && ids[common] === next[common]) common++;
    if (common < ids.length) retokenizedBoundaries++;
    supervised = [
      ...supervised.slice(0, common),
      ...new Array<boolean>(next.length - common).fill(segment.supervised),
    ];
    ids = next;
  }
  return { ids, supervised, retokenizedBoundaries };
}

/** Ids the tokenizer puts before the text (BOS), found by encoding one character with and without them. */
function leadingSpecialIds(tokenizer: Tokenizer): number[] {
  const plain = tokenizer.encode('a', { addSpecialTokens: false });
  const full = tokenizer.encode('a', { addSpecialTokens: true });
  for (let k = 0; k + plain.length <= full.length; k++)
    if (plain.every((id, i) => full[k + i] === id)) return full.slice(0, k);
  return [];
}

function requireSingleToken(tokenizer: Tokenizer, text: string, why: string): void {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (ids.length !== 1)
    throw new Error(
      `${why}: "${text}" encodes as ${ids.length} tokens [${ids.join(', ')}] with this tokenizer; ` +
        `add it with tokenizer.addTokens(['${text}'], { special: true }) (and resize the embeddings).`,
    );
}

/** Validates the tokenizer against the template and image token once; the returned function builds examples. */
export function createExampleBuilder(options: BuildExampleOptions): (sample: Sample) => ExampleResult {
  const { tokenizer, imageToken, maxLength } = options;
  const template = typeof options.template === 'string' ? getTemplate(options.template) : options.template;
  if (!Number.isInteger(imageToken.slots) || imageToken.slots < 1)
    throw new Error(`imageToken.slots must be a positive integer, got ${imageToken.slots}.`);
  if (!Number.isInteger(maxLength) || maxLength < 2)
    throw new Error(`maxLength must be an integer >= 2, got ${maxLength}.`);
  const imageTokenText = tokenizer.idToToken(imageToken.id);
  if (imageTokenText === undefined)
    throw new Error(
      `imageToken.id ${imageToken.id} is not in the tokenizer's vocabulary: add the image token with tokenizer.addTokens(['<image>'], { special: true }).`,
    );
  requireSingleToken(tokenizer, imageTokenText, `The image token (id ${imageToken.id})`);
  for (const token of template.requiredTokens)
    requireSingleToken(tokenizer, token, `Template ${template.name} needs "${token}" as one token`);
  const leadingIds = leadingSpecialIds(tokenizer);
  const bosText = tokenizer.specialTokens.bosToken;
  const ctx = { tokenizer, imageTokenText };
  // Special tokens are the ones decode drops when asked to (a lone "▁" also decodes to '', so compare).
  const isSpecial = (id: number) =>
    tokenizer.decode([id], { skipSpecialTokens: true }) !==
    tokenizer.decode([id], { skipSpecialTokens: false });

  return (sample) => {
    const skip = (reason: SkipReason, message: string): ExampleResult => ({
      ok: false,
      reason,
      message: `${describeLocation(sample.location)}: sample ${sample.id}: ${message}`,
    });
    let segments: Segment[];
    try {
      segments = template.render(sample.turns, ctx);
    } catch (error) {
      if (error instanceof TemplateMismatchError) return skip('template_mismatch', error.message);
      throw error;
    }
    // Templates that write BOS themselves (HF templates with {{ bos_token }}) must not get a second one.
    const rendersBos =
      bosText !== null && (segments.find((s) => s.text !== '')?.text.startsWith(bosText) ?? false);
    const tokens = tokenizeSegments(tokenizer, segments, rendersBos ? [] : leadingIds);

    const imageCount = tokens.ids.reduce((n, id) => n + (id === imageToken.id ? 1 : 0), 0);
    if (imageCount !== sample.images.length)
      return skip(
        'image_count_mismatch',
        `the rendered conversation holds ${imageCount} image token(s) ${imageToken.id} but the sample has ${sample.images.length} image(s)`,
      );

    const ids: number[] = [];
    const labels: number[] = [];
    tokens.ids.forEach((id, i) => {
      const run = id === imageToken.id ? imageToken.slots : 1;
      for (let k = 0; k < run; k++) {
        ids.push(id);
        labels.push(tokens.supervised[i] && id !== imageToken.id ? id : IGNORE_INDEX);
      }
    });
    const fullLength = ids.length;
    const truncated = fullLength > maxLength;
    if (truncated && ids.indexOf(imageToken.id, maxLength) !== -1)
      return skip(
        'image_truncated',
        `${fullLength} tokens with images expanded; maxLength ${maxLength} would cut an image's ${imageToken.slots} placeholders (raise maxLength or shorten the sample)`,
      );
    const length = Math.min(fullLength, maxLength);
    labels[0] = IGNORE_INDEX; // nothing predicts the first position
    const kept = labels.slice(0, length);
    const supervisedTokens = kept.reduce((n, label) => n + (label === IGNORE_INDEX ? 0 : 1), 0);
    if (supervisedTokens === 0)
      return skip(
        'no_supervised_tokens',
        truncated
          ? `truncation to maxLength ${maxLength} (of ${fullLength} tokens) leaves no assistant token to train on`
          : 'no assistant token to train on',
      );
    const lastSupervised = kept.findLast((label) => label !== IGNORE_INDEX) ?? IGNORE_INDEX;
    return {
      ok: true,
      example: {
        id: sample.id,
        location: sample.location,
        inputIds: Int32Array.from(ids.slice(0, length)),
        labels: Int32Array.from(kept),
        images: [...sample.images],
        supervisedTokens,
        truncated,
        retokenizedBoundaries: tokens.retokenizedBoundaries,
        endsWithSpecialToken: isSpecial(lastSupervised),
      },
    };
  };
}

/** One sample → `{ inputIds, labels, images }`, or the reason it cannot be trained on. */
export function buildExample(sample: Sample, options: BuildExampleOptions): ExampleResult {
  return createExampleBuilder(options)(sample);
}

/**
 * The example with the record's head targets attached, checked against the trigger tokens of `inputIds`:
 * each head needs one target per trigger. When truncation cut triggers, the targets of the cut ones (the
 * last) are dropped. Returns a skip (`targets_mismatch`) when the counts still disagree.
 */
export function withHeadTargets(
  example: Example,
  targets: HeadTargets | undefined,
  triggers: HeadTargetsReader['triggers'],
): ExampleResult {
  if (!targets) return { ok: true, example };
  const kept: Record<string, readonly unknown[]> = {};
  for (const [head, list] of Object.entries(targets)) {
    const trigger = triggers[head];
    if (trigger === undefined)
      return {
        ok: false,
        reason: 'targets_mismatch',
        message: `${describeLocation(example.location)}: sample ${example.id}: targets for head "${head}", which has no trigger token in HeadTargetsReader.triggers (${Object.keys(triggers).join(', ') || 'none'})`,
      };
    if (!Array.isArray(list))
      return {
        ok: false,
        reason: 'targets_mismatch',
        message: `${describeLocation(example.location)}: sample ${example.id}: targets.${head} is not an array: give one target per trigger token`,
      };
    const count = example.inputIds.reduce((n, id) => n + (id === trigger ? 1 : 0), 0);
    const cut = example.truncated && count < list.length;
    if (count !== list.length && !cut)
      return {
        ok: false,
        reason: 'targets_mismatch',
        message: `${describeLocation(example.location)}: sample ${example.id}: ${list.length} targets for head "${head}" but ${count} trigger token(s) ${trigger} in the ids`,
      };
    kept[head] = list.slice(0, count);
  }
  return { ok: true, example: { ...example, targets: kept } };
}
