// The high-level API, in the transformers.js spirit: `const vlm = await loadModel(dir)` then
// `await vlm.generate({ messages, media })`. Any model a family can load (LLaVA-HF, a vistune composition, a
// text-only decoder, a plugin's family), any registered media kind; every CLI command is built on it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AnswerAnnotation,
  type AnswerAnnotator,
  allowNonfiniteWeights,
  type BackendName,
  type ChatContentPart,
  type ChatMessage,
  type ChatSettings,
  expandPlaceholders,
  type GeneratedToken,
  type GenerateOptions,
  type GenerateResult,
  generateStream,
  initBackend,
  loadPretrained,
  type MediaInputs,
  type MediaKind,
  type MediaProcessor,
  type MultimodalModel,
  type ProcessedMedia,
  type Registry,
  readJsonFile,
  type StopReason,
  Tokenizer,
  tf,
} from '@vistune/core';
import { createVistuneRegistry, type RegistryOptions } from './registry.js';

/** A media item: a file path or the file's bytes. */
export type MediaSource = string | Uint8Array;

/** A message part: text, or one media item of a kind (`{ type: 'image' }`, `{ type: 'video' }`, …). */
export type VlmContentPart = { type: 'text'; text: string } | { type: string; text?: undefined };

export interface VlmMessage {
  role: string;
  content: string | readonly VlmContentPart[];
}

export interface VlmRequest {
  messages: readonly VlmMessage[];
  /** Items per modality (or media kind), in the order their parts appear in the messages. */
  media?: Readonly<Record<string, readonly MediaSource[]>>;
}

/** Sampling and stopping options (HF generate names); `decode` is supplied by the model. */
export type VlmGenerateOptions = Omit<GenerateOptions, 'decode'>;

export interface PreparedRequest {
  prompt: string;
  /** Prompt ids with every placeholder expanded to its slots. */
  inputIds: number[];
  media: MediaInputs;
  processed: Record<string, ProcessedMedia[]>;
}

export interface VlmOutput {
  text: string;
  ids: number[];
  finishReason: StopReason;
  prompt: string;
  inputIds: number[];
  processed: Record<string, ProcessedMedia[]>;
  /** Heads' and codecs' structured outputs (masks, boxes …). */
  annotations: AnswerAnnotation[];
}

/** One modality of a loaded model, as the prompt builder and the CLI see it. */
export interface ModalityRuntime {
  name: string;
  kind: MediaKind;
  placeholderTokenId: number;
  /** How the placeholder appears in text (the token's text, else the kind's marker). */
  placeholderText: string;
  /** Turns files into encoder inputs; absent where the folder holds no processor config. */
  processor?: MediaProcessor;
}

export interface LoadModelOptions extends RegistryOptions {
  /** Use this registry (plugins already loaded) instead of building one. */
  registry?: Registry;
  /** Load weights holding NaN/Inf instead of refusing them (the error names the tensor). */
  allowNonfinite?: boolean;
  /** Backend to initialise when none is (default: VISTUNE_BACKEND or the best available). */
  backend?: BackendName;
  /**
   * The LM head's weights for inference: float32 (default) or int8 rows with one scale each (wasm and cpu
   * backends; decode reads a quarter of the head's bytes). Greedy ids on the parity fixture are unchanged;
   * docs/performance.md has the speed and the logit drift.
   */
  lmHead?: 'float32' | 'int8';
}

function isAnnotator(x: unknown): x is AnswerAnnotator {
  return typeof (x as Partial<AnswerAnnotator> | null)?.annotate === 'function';
}

/** A model with its tokenizer and media processors: prompts in, answers (and annotations) out. */
export class VisionLanguageModel {
  constructor(
    readonly dir: string,
    readonly model: MultimodalModel,
    readonly tokenizer: Tokenizer,
    readonly registry: Registry,
    readonly modalities: ReadonlyMap<string, ModalityRuntime>,
    /** Template and system prompt it was trained with (config.json `vistune_chat`), when recorded. */
    readonly chat: ChatSettings = {},
  ) {}

  /** Longest sequence the decoder takes (prompt + answer). */
  get contextLength(): number {
    const config = (this.model.llm as { config?: { maxPositionEmbeddings?: number } }).config;
    return config?.maxPositionEmbeddings ?? Number.POSITIVE_INFINITY;
  }

  /** The modality that takes items of a kind or modality name (`image`, `video`, a plugin's kind). */
  modalityFor(key: string): ModalityRuntime {
    const direct = this.modalities.get(key);
    if (direct) return direct;
    const byKind = [...this.modalities.values()].filter((m) => m.kind.name === key);
    if (byKind.length === 1) return byKind[0];
    const have = [...this.modalities.values()].map((m) => `${m.name} (${m.kind.name})`).join(', ');
    throw new Error(
      byKind.length
        ? `${this.dir}: several modalities take '${key}' items (${byKind.map((m) => m.name).join(', ')}): name the modality`
        : `${this.dir} takes no '${key}' media (its modalities: ${have || 'none, a text-only model'})`,
    );
  }

  /** The modality whose kind reads files with this extension (for `/attach` and `--media PATH`). */
  modalityForFile(path: string): ModalityRuntime {
    const ext = path.slice(path.lastIndexOf('.')).toLowerCase();
    const found = [...this.modalities.values()].find((m) => m.kind.extensions.includes(ext));
    if (found) return found;
    const known = [...this.modalities.values()].map((m) => `${m.kind.name}: ${m.kind.extensions.join(' ')}`);
    throw new Error(
      `${path}: no modality of this model reads '${ext}' files (${known.join('; ') || 'it is text-only'}); name the kind with --media KIND=PATH`,
    );
  }

  /** Chat template text of the conversation (system prompt recorded at training added when none is given). */
  renderPrompt(messages: readonly VlmMessage[]): string {
    const withSystem =
      this.chat.systemPrompt && !messages.some((m) => m.role === 'system')
        ? [{ role: 'system', content: this.chat.systemPrompt }, ...messages]
        : messages;
    // Multimodal HF templates iterate content parts: string contents become one text part there.
    const asParts = this.modalities.size > 0;
    const chat: ChatMessage[] = withSystem.map((m) => ({
      role: m.role,
      content:
        typeof m.content === 'string'
          ? asParts
            ? [{ type: 'text', text: m.content }]
            : m.content
          : m.content.map((part) => this.templatePart(part)),
    }));
    return this.tokenizer.applyChatTemplate(chat, { addGenerationPrompt: true });
  }

  /** Image parts stay parts (HF templates render them); other kinds become their placeholder text. */
  private templatePart(part: VlmContentPart): ChatContentPart {
    if (part.type === 'text') return { type: 'text', text: part.text ?? '' };
    const modality = this.modalityFor(part.type);
    return modality.kind.name === 'image'
      ? { type: 'image' }
      : { type: 'text', text: modality.placeholderText };
  }

  /** Renders, tokenizes, preprocesses every item and expands each placeholder to its slot count. */
  async prepare(request: VlmRequest): Promise<PreparedRequest> {
    const prompt = this.renderPrompt(request.messages);
    let inputIds = this.tokenizer.encode(prompt);
    const media: Record<string, tf.Tensor[][]> = {};
    const processed: Record<string, ProcessedMedia[]> = {};
    const given = new Map<string, readonly MediaSource[]>();
    for (const [key, items] of Object.entries(request.media ?? {})) {
      if (items.length) given.set(this.modalityFor(key).name, items);
    }
    try {
      for (const modality of this.modalities.values()) {
        const items = given.get(modality.name) ?? [];
        const count = inputIds.filter((id) => id === modality.placeholderTokenId).length;
        if (count !== items.length)
          throw new Error(
            `the prompt has ${count} ${modality.placeholderText} placeholder(s) but ${items.length} ${modality.kind.name} item(s) were given`,
          );
        if (!items.length) continue;
        if (!modality.processor)
          throw new Error(
            `${this.dir}: no processor for modality '${modality.name}' (add preprocessor_config.json or modalities.${modality.name}.processor to config.json)`,
          );
        processed[modality.name] = [];
        for (const item of items) {
          if (typeof item === 'string' && !existsSync(item))
            throw new Error(`${modality.kind.name} not found: ${item}`);
          processed[modality.name].push(await modality.processor.process(item));
        }
        media[modality.name] = [processed[modality.name].map((p) => p.tensor)];
        inputIds = expandPlaceholders(
          inputIds,
          modality.placeholderTokenId,
          processed[modality.name].map((p) => this.model.slotsPerItem(modality.name, p.tensor.shape)),
        );
      }
    } catch (err) {
      tf.dispose(Object.values(processed).flatMap((list) => list.map((p) => p.tensor)));
      throw err;
    }
    return { prompt, inputIds, media, processed };
  }

  /** Generation options with the tokenizer's decoding and end-of-sequence ids filled in. */
  generateOptions(opts: VlmGenerateOptions = {}): GenerateOptions {
    return {
      eosTokenIds: this.tokenizer.eosTokenIds,
      ...opts,
      decode: (ids) => this.tokenizer.decode([...ids], { skipSpecialTokens: true }),
    };
  }

  /** Streams the answer token by token; the generator's return value is the finished output. */
  async *stream(
    request: VlmRequest | PreparedRequest,
    opts: VlmGenerateOptions = {},
  ): AsyncGenerator<GeneratedToken, VlmOutput, undefined> {
    const prepared = 'inputIds' in request ? request : await this.prepare(request);
    const ids = tf.tensor2d([prepared.inputIds], [1, prepared.inputIds.length], 'int32');
    const hasMedia = Object.keys(prepared.media).length > 0;
    const { inputsEmbeds, attentionMask } = this.model.prepareGeneration(ids, hasMedia ? prepared.media : {});
    ids.dispose();
    let result: GenerateResult;
    try {
      result = yield* generateStream(
        this.model.llm,
        { inputsEmbeds, attentionMask, promptIds: [prepared.inputIds] },
        this.generateOptions(opts),
      );
    } finally {
      tf.dispose([inputsEmbeds, attentionMask]);
    }
    try {
      const answerIds = result.ids[0] ?? [];
      const text = this.tokenizer.decode(answerIds, { skipSpecialTokens: true });
      const annotations = await this.annotate({
        model: this.model,
        promptIds: prepared.inputIds,
        answerIds,
        text,
        media: prepared.media,
        processed: prepared.processed,
      });
      return {
        text,
        ids: answerIds,
        finishReason: result.finishReason[0],
        prompt: prepared.prompt,
        inputIds: prepared.inputIds,
        processed: prepared.processed,
        annotations,
      };
    } finally {
      tf.dispose(Object.values(prepared.processed).flatMap((list) => list.map((p) => p.tensor)));
    }
  }

  /** Answers one request; generation options may ride on the request (`{ messages, media, maxNewTokens }`). */
  async generate(
    request: VlmRequest & VlmGenerateOptions,
    opts: VlmGenerateOptions = {},
  ): Promise<VlmOutput> {
    const { messages, media, ...inline } = request;
    const stream = this.stream({ messages, media }, { ...inline, ...opts });
    for (;;) {
      const next = await stream.next();
      if (next.done) return next.value;
    }
  }

  /** Annotations of the model's heads that implement AnswerAnnotator, plus `extra` (a codec chosen by the caller). */
  async annotate(
    ctx: Parameters<AnswerAnnotator['annotate']>[0],
    extra: readonly AnswerAnnotator[] = [],
  ): Promise<AnswerAnnotation[]> {
    const heads: readonly unknown[] = this.model.heads;
    const annotators: AnswerAnnotator[] = [...heads.filter(isAnnotator), ...extra];
    const out: AnswerAnnotation[] = [];
    for (const a of annotators) {
      const annotation = await a.annotate(ctx);
      if (annotation) out.push(annotation);
    }
    return out;
  }

  /** Writes a loadable folder: the model (its family's layout), tokenizer and processors. */
  async save(dir: string): Promise<void> {
    await this.model.save(dir, { tokenizer: this.tokenizer });
    await this.tokenizer.saveTo(dir);
    for (const m of this.modalities.values()) await m.processor?.save?.(dir);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * An image processor from a preprocessor_config.json (file or folder): its image_processor_type picks the
 * registry entry (`defaultType` when the file names none).
 */
export async function imageProcessorFromFile(
  path: string,
  registry: Registry,
  defaultType = '',
): Promise<MediaProcessor> {
  const file = path.endsWith('.json') ? path : join(path, 'preprocessor_config.json');
  const hf = (await readJsonFile(file, 'image processor config')) as Record<string, unknown>;
  const type = String(hf.image_processor_type ?? hf.feature_extractor_type ?? defaultType);
  const entry = registry.findHf('processor', type);
  if (!entry) {
    const known = registry.list('processor').flatMap((e) => e.hfTypes ?? []);
    throw new Error(
      `${file}: image_processor_type '${type || '(missing)'}' is read by no registered processor (known: ${known.join(', ')}); load the plugin that registers it`,
    );
  }
  return (await registry.create('processor', { type: entry.name, pretrained: file })) as MediaProcessor;
}

/** The processor of each modality: the config the model names, else (images) the folder's preprocessor_config.json. */
async function processorFor(
  registry: Registry,
  dir: string,
  config: Record<string, unknown> | undefined,
  kind: MediaKind,
): Promise<MediaProcessor | undefined> {
  if (config) return (await registry.create('processor', config)) as MediaProcessor;
  const path = join(dir, 'preprocessor_config.json');
  if (kind.name !== 'image' || !existsSync(path)) return undefined;
  return imageProcessorFromFile(path, registry);
}

/** Tokenizer, processors and modality runtimes around a model (loaded, or built from a recipe). */
export async function wrapModel(
  dir: string,
  model: MultimodalModel,
  tokenizer: Tokenizer,
  registry: Registry,
  processors: Readonly<Record<string, MediaProcessor>> = {},
): Promise<VisionLanguageModel> {
  if (tokenizer.vocabSize > (model.llm as { vocabSize?: number }).vocabSize!)
    throw new Error(
      `${join(dir, 'tokenizer.json')} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${(model.llm as { vocabSize?: number }).vocabSize}: ` +
        `(${join(dir, 'config.json')}): use the tokenizer the model was trained with, or resize the embeddings`,
    );
  const modalities = new Map<string, ModalityRuntime>();
  for (const [name, spec] of model.modalities) {
    const config = model.composition?.modalities[name];
    const kindName = config?.media ?? name;
    const kind = registry.createSync('media', { type: kindName }) as MediaKind;
    const processor =
      processors[name] ??
      (await processorFor(registry, dir, config?.processor as Record<string, unknown> | undefined, kind));
    modalities.set(name, {
      name,
      kind,
      placeholderTokenId: spec.placeholderTokenId,
      placeholderText: tokenizer.idToToken(spec.placeholderTokenId) ?? kind.marker,
      processor,
    });
  }
  return new VisionLanguageModel(dir, model, tokenizer, registry, modalities, model.composition?.chat ?? {});
}

/**
 * Loads a model folder with its tokenizer and processors. The registry holds the built-in packages, the
 * plugins installed in the project, `plugins`, and the plugins the folder names (config.json `vistune_plugins`).
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<VisionLanguageModel> {
  await initBackend({ backend: opts.backend, quiet: true });
  if (!existsSync(join(dir, 'config.json')))
    throw new Error(
      `${join(dir, 'config.json')} not found: a model folder holds config.json, model.safetensors and tokenizer.json`,
    );
  const registry = opts.registry ?? (await createVistuneRegistry(opts));
  const load = () => loadPretrained(dir, registry);
  const model = await (opts.allowNonfinite ? allowNonfiniteWeights(load) : load());
  try {
    if (opts.lmHead === 'int8') {
      if (!model.llm.quantizeLmHead)
        throw new Error(
          `${dir}: this model's language model has no int8 LM head (quantizeLmHead): use lmHead float32`,
        );
      model.llm.quantizeLmHead('int8');
    }
    const tokenizer = await Tokenizer.fromDir(dir);
    return await wrapModel(dir, model, tokenizer, registry);
  } catch (err) {
    model.dispose();
    throw err;
  }
}
