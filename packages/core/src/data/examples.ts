// Sample → training example: template segments → token ids and labels built together, each media marker
// (`<image>`, `<video>`, …) expanded to its kind's placeholder run, truncation that never cuts a run, and a
// supervised-token check.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import {
  checkMediaKinds,
  IMAGE_MARKER,
  type MediaKindSpec,
  mediaOf,
  type RecordLocation,
  type Sample,
} from './samples.js';
import { mediaSkipReason, type Skip, type SkipReason, sampleSkip } from './stats.js';
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

/** One media kind's placeholder: token id, slots per item, and the marker that stands for an item in the text. */
export interface MediaTokenSpec extends ImageTokenSpec {
  /** Default `<kind>` (`<image>` for images). */
  marker?: string;
}

export interface BuildExampleOptions {
  tokenizer: Tokenizer;
  template: ConversationTemplate | TemplateName;
  /** Shorthand for `mediaTokens: { image: imageToken }` (a model with images only). */
  imageToken?: ImageTokenSpec;
  /** Per media kind (the record field: image, video, audio, …): its placeholder token and slots per item. */
  mediaTokens?: Readonly<Record<string, MediaTokenSpec>>;
  /** Longest sequence kept (after image expansion); longer examples are cut at the end. */
  maxLength: number;
}

export interface Example {
  id: string;
  location: RecordLocation;
  /** Token ids, each media item expanded to its kind's `slots` placeholder ids. */
  inputIds: Int32Array;
  /** Same length; the id where supervised, else -100 (HF semantics: the loss shifts, labels[t+1] is predicted at t). */
  labels: Int32Array;
  /** Image paths, in placeholder order (= media.image). */
  images: string[];
  /** Item paths per media kind, in placeholder order (images included); absent: images only. */
  media?: Record<string, string[]>;
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

export type ExampleResult = { ok: true; example: Example } | Skip;

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

/** One media kind as the builder uses it: marker, placeholder id and slots, and the option that set it. */
export interface ResolvedMediaToken {
  kind: string;
  marker: string;
  id: number;
  slots: number;
  /** `imageToken` or `mediaTokens.<kind>`, for error messages. */
  field: string;
}

/** `imageToken` and `mediaTokens` as one list of kinds (imageToken = the image kind); checks the shapes. */
export function resolveMediaTokens(
  options: Pick<BuildExampleOptions, 'imageToken' | 'mediaTokens'>,
): ResolvedMediaToken[] {
  const { imageToken, mediaTokens = {} } = options;
  if (imageToken && mediaTokens.image)
    throw new Error('Give imageToken or mediaTokens.image, not both (imageToken is the shorthand for it).');
  const entries: [string, MediaTokenSpec, string][] = Object.entries(mediaTokens).map(([kind, spec]) => [
    kind,
    spec,
    `mediaTokens.${kind}`,
  ]);
  if (imageToken) entries.unshift(['image', imageToken, 'imageToken']);
  const resolved = entries.map(([kind, spec, field]) => {
    if (!Number.isInteger(spec.slots) || spec.slots < 1)
      throw new Error(`${field}.slots must be a positive integer, got ${spec.slots}.`);
    const marker = spec.marker ?? (kind === 'image' ? IMAGE_MARKER : `<${kind}>`);
    return { kind, marker, id: spec.id, slots: spec.slots, field };
  });
  checkMediaKinds(mediaKindsOf(resolved), 'mediaTokens');
  const ids = new Set(resolved.map((t) => t.id));
  if (ids.size !== resolved.length)
    throw new Error(
      `Media kinds share a placeholder id (${resolved.map((t) => `${t.field}.id ${t.id}`).join(', ')}): give each kind its own token.`,
    );
  return resolved;
}

/** The reader's view of the media tokens: which record fields to read and which markers they use. */
export function mediaKindsOf(tokens: readonly ResolvedMediaToken[]): MediaKindSpec[] {
  return tokens.map(({ kind, marker }) => ({ name: kind, marker }));
}

/** `images` for the image kind (as LLaVA says it), `<kind> items` for the others. */
const itemsOf = (kind: string) => (kind === 'image' ? 'images' : `${kind} items`);

/** Validates the tokenizer against the template and media tokens once; the returned function builds examples. */
export function createExampleBuilder(options: BuildExampleOptions): (sample: Sample) => ExampleResult {
  const { tokenizer, maxLength } = options;
  const template = typeof options.template === 'string' ? getTemplate(options.template) : options.template;
  const tokens = resolveMediaTokens(options);
  if (!Number.isInteger(maxLength) || maxLength < 2)
    throw new Error(`maxLength must be an integer >= 2, got ${maxLength}.`);
  const markers = tokens.map(({ kind, marker, id, field }) => {
    const tokenText = tokenizer.idToToken(id);
    if (tokenText === undefined)
      throw new Error(
        `${field}.id ${id} is not in the tokenizer's vocabulary: add the ${kind} token with tokenizer.addTokens(['${marker}'], { special: true }).`,
      );
    requireSingleToken(tokenizer, tokenText, `The ${kind} token (id ${id})`);
    return { kind, marker, tokenText };
  });
  for (const token of template.requiredTokens)
    requireSingleToken(tokenizer, token, `Template ${template.name} needs "${token}" as one token`);
  const leadingIds = leadingSpecialIds(tokenizer);
  const bosText = tokenizer.specialTokens.bosToken;
  const imageTokenText = markers.find((m) => m.kind === 'image')?.tokenText ?? IMAGE_MARKER;
  const ctx = { tokenizer, imageTokenText, markers };
  const slotsOf = new Map(tokens.map((t) => [t.id, t.slots]));
  // Special tokens are the ones decode drops when asked to (a lone "▁" also decodes to '', so compare).
  const isSpecial = (id: number) =>
    tokenizer.decode([id], { skipSpecialTokens: true }) !==
    tokenizer.decode([id], { skipSpecialTokens: false });

  return (sample) => {
    const skip = (reason: SkipReason, detail: string) => sampleSkip(reason, sample, detail);
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
    const tokenized = tokenizeSegments(tokenizer, segments, rendersBos ? [] : leadingIds);

    const media = mediaOf(sample);
    const unplaced = Object.keys(media).find(
      (kind) => media[kind].length > 0 && !tokens.some((t) => t.kind === kind),
    );
    if (unplaced !== undefined)
      return skip(
        mediaSkipReason(unplaced, 'count_mismatch'),
        `the sample has ${media[unplaced].length} ${unplaced}(s) but no media token is configured for ${unplaced} (mediaTokens.${unplaced})`,
      );
    for (const { kind, id } of tokens) {
      const placed = tokenized.ids.reduce((n, t) => n + (t === id ? 1 : 0), 0);
      const items = media[kind]?.length ?? 0;
      if (placed !== items)
        return skip(
          mediaSkipReason(kind, 'count_mismatch'),
          `the rendered conversation holds ${placed} ${kind} token(s) ${id} but the sample has ${items} ${kind}(s)`,
        );
    }

    const ids: number[] = [];
    const labels: number[] = [];
    tokenized.ids.forEach((id, i) => {
      const slots = slotsOf.get(id);
      for (let k = 0; k < (slots ?? 1); k++) {
        ids.push(id);
        labels.push(tokenized.supervised[i] && slots === undefined ? id : IGNORE_INDEX);
      }
    });
    const fullLength = ids.length;
    const truncated = fullLength > maxLength;
    // The first placeholder past the end belongs to the run that is cut (or the first one dropped).
    const firstCut = truncated ? ids.findIndex((id, i) => i >= maxLength && slotsOf.has(id)) : -1;
    const cut = firstCut === -1 ? undefined : tokens.find((t) => t.id === ids[firstCut]);
    if (cut)
      return skip(
        mediaSkipReason(cut.kind, 'truncated'),
        `${fullLength} tokens with ${itemsOf(cut.kind)} expanded; maxLength ${maxLength} would cut one ${cut.kind}'s ${cut.slots} placeholders (raise maxLength or shorten the sample)`,
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
    const exampleMedia = Object.fromEntries(tokens.map(({ kind }) => [kind, [...(media[kind] ?? [])]]));
    return {
      ok: true,
      example: {
        id: sample.id,
        location: sample.location,
        inputIds: Int32Array.from(ids.slice(0, length)),
        labels: Int32Array.from(kept),
        images: [...(media.image ?? [])],
        media: exampleMedia,
        supervisedTokens,
        truncated,
        retokenizedBoundaries: tokenized.retokenizedBoundaries,
        endsWithSpecialToken: isSpecial(lastSupervised),
      },
    };
  };
}

/** One sample → `{ inputIds, labels, images, media }`, or the reason it cannot be trained on. */
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
  const mismatch = (detail: string) => sampleSkip('targets_mismatch', example, detail);
  const kept: Record<string, readonly unknown[]> = {};
  for (const [head, list] of Object.entries(targets)) {
    const trigger = triggers[head];
    if (trigger === undefined)
      return mismatch(
        `targets for head "${head}", which has no trigger token in HeadTargetsReader.triggers (${Object.keys(triggers).join(', ') || 'none'})`,
      );
    if (!Array.isArray(list))
      return mismatch(`targets.${head} is not an array: give one target per trigger token`);
    const count = example.inputIds.reduce((n, t) => n + (t === trigger ? 1 : 0), 0);
    const cut = example.truncated && count < list.length;
    if (count !== list.length && !cut)
      return mismatch(
        `${list.length} targets for head "${head}" but ${count} trigger token(s) ${trigger} in the ids`,
      );
    kept[head] = list.slice(0, count);
  }
  return { ok: true, example: { ...example, targets: kept } };
}
