// Training a tokenizer on instruction data: every record rendered by the conversation template the model will
// be trained with (system prompt, role words, the space before each answer, terminators, media markers), so
// the vocabulary holds the pieces training actually produces.
import { readSamples } from '../../data/readers.js';
import type { MediaKindSpec, Sample } from '../../data/samples.js';
import { type ConversationTemplate, TemplateMismatchError } from '../../data/templates.js';
import type { MediaKind } from '../../pipeline/types.js';
import type { Registry } from '../../registry/types.js';
import { TEMPLATE_TOKENIZER_SETTINGS } from './chat-templates.js';
import { type TrainedTokenizer, type TrainTokenizerOptions, trainTokenizer } from './train.js';

export interface TrainTokenizerOnDataOptions
  extends Omit<TrainTokenizerOptions, 'chatTemplate' | 'additionalSpecialTokens'> {
  /** LLaVA-format JSON / JSONL files. */
  files: readonly string[];
  /** Registry with the conversation templates and media kinds (every registered kind's marker is a special token). */
  registry: Registry;
  /** Conversation template (registry kind `template`) the model will be trained with. Default vicuna_v1. */
  template?: string;
  /** The recipe's data.systemPrompt; undefined = the template's default system prompt, which is then learnt too. */
  systemPrompt?: string;
  /** Jinja chat template to write; default the one matching `template` (required for templates without one). */
  chatTemplate?: string;
  /** More special tokens (`[SEG]`, location tokens …) after the media markers. */
  extraSpecialTokens?: readonly string[];
}

export interface CorpusStats {
  /** Records rendered into the corpus. */
  samples: number;
  /** Records the reader or the template refused, with the first few reasons. */
  skipped: number;
  skipReasons: string[];
}

export interface DataTrainedTokenizer extends TrainedTokenizer {
  corpus: CorpusStats;
  /** Media kind → its marker's id (the modality's placeholder_token_id). */
  mediaTokenIds: Record<string, number>;
}

/** The registered media kinds (name and marker). */
export function registeredMediaKinds(registry: Registry): MediaKind[] {
  return registry.list('media').map((e) => registry.createSync('media', { type: e.name }) as MediaKind);
}

export async function trainTokenizerOnData(
  options: TrainTokenizerOnDataOptions,
): Promise<DataTrainedTokenizer> {
  const { files, registry, extraSpecialTokens = [], ...trainOptions } = options;
  if (files.length === 0) throw new Error('train a tokenizer: no data files given (LLaVA JSON / JSONL)');
  const templateName = options.template ?? 'vicuna_v1';
  const template = registry.createSync(
    'template',
    {
      type: templateName,
      ...(options.systemPrompt === undefined ? {} : { systemPrompt: options.systemPrompt }),
    },
    { path: 'template' },
  ) as ConversationTemplate;
  const settings = TEMPLATE_TOKENIZER_SETTINGS[templateName];
  const chatTemplate = options.chatTemplate ?? settings?.chatTemplate;
  if (chatTemplate === undefined)
    throw new Error(
      `template '${templateName}' has no built-in Jinja chat template (known: ${Object.keys(TEMPLATE_TOKENIZER_SETTINGS).join(', ')}); ` +
        'pass the Jinja source that renders it (chatTemplate / --chat-template FILE)',
    );
  const kinds = registeredMediaKinds(registry);
  const eos = options.specialTokens?.eos ?? settings?.eosToken;
  const specialOptions: TrainTokenizerOptions = {
    ...trainOptions,
    specialTokens: { ...options.specialTokens, ...(eos === undefined ? {} : { eos }) },
    additionalSpecialTokens: [
      ...kinds.map((k) => k.marker),
      ...template.requiredTokens,
      ...extraSpecialTokens,
    ],
    chatTemplate,
  };
  // A tokenizer with only the special tokens and the chat template: templates read the BOS/EOS text from it.
  const frame = trainTokenizer([], { ...specialOptions, vocabSize: Number.MAX_SAFE_INTEGER }).tokenizer;
  const markers = kinds.map((k) => ({ kind: k.name, marker: k.marker, tokenText: k.marker }));
  const ctx = {
    tokenizer: frame,
    imageTokenText: markers.find((m) => m.kind === 'image')?.marker ?? '<image>',
    markers,
  };
  const mediaKinds: MediaKindSpec[] = kinds.map((k) => ({ name: k.name, marker: k.marker }));

  const texts: string[] = [];
  const corpus: CorpusStats = { samples: 0, skipped: 0, skipReasons: [] };
  const skip = (reason: string) => {
    corpus.skipped++;
    if (corpus.skipReasons.length < 5) corpus.skipReasons.push(reason);
  };
  for (const file of files) {
    for await (const result of readSamples(file, { mediaKinds })) {
      if (!result.ok) {
        skip(result.message);
        continue;
      }
      const text = renderSample(result.sample, template, ctx, skip);
      if (text === null) continue;
      texts.push(text);
      corpus.samples++;
    }
  }
  if (corpus.samples === 0)
    throw new Error(
      `train a tokenizer: none of the records of ${files.join(', ')} could be rendered with template '${templateName}'` +
        (corpus.skipReasons.length ? ` (${corpus.skipReasons.join('; ')})` : ''),
    );
  const trained = trainTokenizer(texts, specialOptions);
  const mediaTokenIds = Object.fromEntries(
    kinds.map((k) => [k.name, trained.tokenizer.tokenToId(k.marker) as number]),
  );
  return { ...trained, corpus, mediaTokenIds };
}

/** The sample's training text, or null (with the reason recorded) when the template does not fit it. */
function renderSample(
  sample: Sample,
  template: ConversationTemplate,
  ctx: Parameters<ConversationTemplate['render']>[1],
  skip: (reason: string) => void,
): string | null {
  try {
    return template
      .render(sample.turns, ctx)
      .map((segment) => segment.text)
      .join('');
  } catch (error) {
    if (!(error instanceof TemplateMismatchError)) throw error;
    skip(`${sample.location.file}: sample ${sample.id}: ${error.message}`);
    return null;
  }
}
