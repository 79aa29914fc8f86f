// Tokenizer: a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json) on @huggingface/tokenizers.
import { join } from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import {
  type ApplyChatTemplateOptions,
  type ChatMessage,
  type ChatTemplateSet,
  chatTemplateOrigin,
  collectChatTemplates,
  renderChatTemplate,
  selectChatTemplate,
} from './chat-template.js';
import {
  type AddedTokenJSON,
  type ChatTemplateFile,
  readTokenizerFiles,
  type SpecialTokensMapJSON,
  type SpecialTokenValue,
  type TokenizerConfigJSON,
  type TokenizerJSON,
  writeTokenizerFiles,
} from './tokenizer-files.js';

export interface TokenizerEncodeOptions {
  /** Add BOS / EOS (per `add_bos_token` / `add_eos_token`, else the tokenizer.json post-processor). Default true. */
  addSpecialTokens?: boolean;
}

export interface TokenizerDecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, `<image>`, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

export interface AddTokensOptions {
  /** Mark the tokens special (skipped by `decode({ skipSpecialTokens: true })`). Default false. */
  special?: boolean;
  /**
   * Match the token after normalisation. Default false: the token is matched verbatim anywhere in the text.
   * (transformers' `add_tokens` defaults to true for non-special tokens, which with LLaMA's Prepend("▁")
   * normalizer only matches the token after a space.)
   */
  normalized?: boolean;
}

/** The special-token strings of a tokenizer (null where it has none). */
export interface SpecialTokens {
  bosToken: string | null;
  eosToken: string | null;
  unkToken: string | null;
  padToken: string | null;
  additionalSpecialTokens: string[];
}

export interface TokenizerSources {
  tokenizerJson: TokenizerJSON;
  tokenizerConfig?: TokenizerConfigJSON;
  specialTokensMap?: SpecialTokensMapJSON | null;
  chatTemplateFile?: ChatTemplateFile | null;
  chatTemplatePaths?: string[];
}

function tokenString(value: SpecialTokenValue | undefined): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : value.content;
}

export class Tokenizer {
  private readonly tokenizerJson: TokenizerJSON;
  private readonly tokenizerConfig: TokenizerConfigJSON;
  private readonly specialTokensMap: SpecialTokensMapJSON | null;
  private readonly chatTemplateFile: ChatTemplateFile | null;
  private readonly chatTemplates: ChatTemplateSet;
  private hf!: HFTokenizer;
  private maxTokenId = -1;

  private constructor(sources: TokenizerSources) {
    // Own copies: addTokens edits them and saveTo writes them back.
    this.tokenizerJson = structuredClone(sources.tokenizerJson);
    this.tokenizerJson.added_tokens ??= [];
    this.tokenizerConfig = structuredClone(sources.tokenizerConfig ?? {});
    this.specialTokensMap = sources.specialTokensMap ?? null;
    this.chatTemplateFile = sources.chatTemplateFile ?? null;
    const searched = sources.chatTemplatePaths ?? [
      'tokenizer_config.chat_template (none given to Tokenizer.fromJSON)',
    ];
    const fileName = this.chatTemplateFile?.fileName;
    this.chatTemplates = collectChatTemplates(
      this.tokenizerConfig.chat_template,
      this.chatTemplateFile?.template,
      searched,
      {
        file: fileName && (searched.find((p) => p.endsWith(fileName)) ?? fileName),
        config: searched.find((p) => p.includes('tokenizer_config.json'))?.replace(/ \(field .*\)$/, ''),
      },
    );
    this.rebuild();
  }

  /** Loads tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.{jinja,json} from `dir`. */
  static async fromDir(dir: string): Promise<Tokenizer> {
    const files = await readTokenizerFiles(dir);
    try {
      return new Tokenizer(files);
    } catch (error) {
      // The library indexes into the JSON unchecked: a wrong structure surfaces as a TypeError without a file.
      throw new Error(
        `${join(dir, 'tokenizer.json')} (with tokenizer_config.json) cannot be loaded as a Hugging Face tokenizer: ` +
          `${(error as Error).message}; re-export the tokenizer folder (AutoTokenizer.from_pretrained(...).save_pretrained(dir)).`,
        { cause: error },
      );
    }
  }

  /** Builds a tokenizer from parsed tokenizer.json / tokenizer_config.json objects (they are copied). */
  static fromJSON(
    tokenizerJson: TokenizerJSON,
    tokenizerConfig: TokenizerConfigJSON = {},
    extra: Omit<TokenizerSources, 'tokenizerJson' | 'tokenizerConfig'> = {},
  ): Tokenizer {
    return new Tokenizer({ tokenizerJson, tokenizerConfig, ...extra });
  }

  // The library only takes added tokens in its constructor, so any change rebuilds it from the JSON.
  private rebuild(): void {
    this.hf = new HFTokenizer(structuredClone(this.tokenizerJson), structuredClone(this.tokenizerConfig));
    this.maxTokenId = -1;
    for (const id of this.hf.get_vocab(true).values()) this.maxTokenId = Math.max(this.maxTokenId, id);
    for (const token of this.tokenizerJson.added_tokens ?? [])
      this.maxTokenId = Math.max(this.maxTokenId, token.id);
  }

  /** Number of ids the tokenizer can produce (largest id + 1, added tokens included). */
  get vocabSize(): number {
    return this.maxTokenId + 1;
  }

  get specialTokens(): SpecialTokens {
    const config = this.tokenizerConfig;
    const map = this.specialTokensMap ?? {};
    const additional = config.additional_special_tokens ?? map.additional_special_tokens ?? [];
    return {
      bosToken: tokenString(config.bos_token ?? map.bos_token),
      eosToken: tokenString(config.eos_token ?? map.eos_token),
      unkToken: tokenString(config.unk_token ?? map.unk_token),
      padToken: tokenString(config.pad_token ?? map.pad_token),
      additionalSpecialTokens: additional.map(tokenString).filter((t): t is string => t !== null),
    };
  }

  get bosTokenId(): number | null {
    return this.idOfSpecial(this.specialTokens.bosToken);
  }

  get eosTokenId(): number | null {
    return this.idOfSpecial(this.specialTokens.eosToken);
  }

  /** EOS ids from the tokenizer (generation_config.json may list more; merge those at generation time). */
  get eosTokenIds(): number[] {
    const id = this.eosTokenId;
    return id === null ? [] : [id];
  }

  get padTokenId(): number | null {
    return this.idOfSpecial(this.specialTokens.padToken);
  }

  private idOfSpecial(token: string | null): number | null {
    return token === null ? null : (this.tokenToId(token) ?? null);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  encode(text: string, options: TokenizerEncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const { add_bos_token: addBos, add_eos_token: addEos } = this.tokenizerConfig;
    // LLaMA-style configs decide BOS/EOS by flag (transformers rewrites the post-processor from them).
    if (typeof addBos !== 'boolean' && typeof addEos !== 'boolean') {
      return this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    }
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (!addSpecialTokens) return ids;
    const templateIds = this.hf.encode('', { add_special_tokens: true }).ids;
    const bos = (addBos ?? templateIds[0] === this.bosTokenId) ? [this.requiredId('bos_token')] : [];
    const eos = (addEos ?? templateIds.at(-1) === this.eosTokenId) ? [this.requiredId('eos_token')] : [];
    return [...bos, ...ids, ...eos];
  }

  private requiredId(field: 'bos_token' | 'eos_token'): number {
    const id = field === 'bos_token' ? this.bosTokenId : this.eosTokenId;
    if (id === null) {
      throw new Error(
        `tokenizer_config.json sets add_${field}=true but ${field} is missing or not in the vocabulary; ` +
          `set ${field} or add_${field}: false.`,
      );
    }
    return id;
  }

  decode(ids: readonly number[], options: TokenizerDecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      // transformers' default is false; the library's is true.
      clean_up_tokenization_spaces: this.tokenizerConfig.clean_up_tokenization_spaces ?? false,
    });
  }

  /**
   * Adds tokens such as `[SEG]` or `<image>` (each then encodes as one id) and returns their ids, in order.
   * Tokens already added keep their id; a string already in the model vocabulary keeps its model id.
   */
  addTokens(tokens: readonly string[], options: AddTokensOptions = {}): number[] {
    const special = options.special ?? false;
    const normalized = options.normalized ?? false;
    const added = this.tokenizerJson.added_tokens ?? [];
    this.tokenizerConfig.added_tokens_decoder ??= {};
    const decoderEntries = this.tokenizerConfig.added_tokens_decoder;
    let changed = false;
    const ids = tokens.map((content) => {
      if (content.length === 0) throw new Error('addTokens: a token must be a non-empty string.');
      const existing = added.find((token) => token.content === content);
      if (existing !== undefined) return existing.id;
      const id = this.tokenToId(content) ?? this.maxTokenId + 1;
      const entry: AddedTokenJSON = {
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized,
        special,
      };
      added.push(entry);
      const { id: _id, ...decoderEntry } = entry;
      decoderEntries[String(id)] = decoderEntry;
      this.maxTokenId = Math.max(this.maxTokenId, id);
      changed = true;
      return id;
    });
    if (changed) {
      added.sort((a, b) => a.id - b.id);
      this.rebuild();
    }
    return ids;
  }

  /** Renders `messages` with the chat template (option, chat_template file, or tokenizer_config.json). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    const source = selectChatTemplate(this.chatTemplates, options.chatTemplate);
    const tokens = this.specialTokens;
    const context: Record<string, string | string[]> = {
      additional_special_tokens: tokens.additionalSpecialTokens,
    };
    if (tokens.bosToken !== null) context.bos_token = tokens.bosToken;
    if (tokens.eosToken !== null) context.eos_token = tokens.eosToken;
    if (tokens.unkToken !== null) context.unk_token = tokens.unkToken;
    if (tokens.padToken !== null) context.pad_token = tokens.padToken;
    const origin = chatTemplateOrigin(this.chatTemplates, options.chatTemplate);
    return renderChatTemplate(source, messages, context, options, origin);
  }

  /** Writes tokenizer.json, tokenizer_config.json (and the other files it was loaded from) to `dir`. */
  async saveTo(dir: string): Promise<void> {
    await writeTokenizerFiles(dir, {
      tokenizerJson: this.tokenizerJson,
      tokenizerConfig: this.tokenizerConfig,
      specialTokensMap: this.specialTokensMap,
      chatTemplateFile: this.chatTemplateFile,
    });
  }
}
