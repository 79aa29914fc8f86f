export type {
  ApplyChatTemplateOptions,
  ChatContentPart,
  ChatImagePart,
  ChatMessage,
  ChatTextPart,
} from './chat-template.js';
export type {
  AddTokensOptions,
  SpecialTokens,
  TokenizerDecodeOptions,
  TokenizerEncodeOptions,
  TokenizerSources,
} from './tokenizer.js';
export { Tokenizer } from './tokenizer.js';
export type {
  AddedTokenJSON,
  ChatTemplateFile,
  NamedChatTemplate,
  SpecialTokensMapJSON,
  SpecialTokenValue,
  TokenizerConfigJSON,
  TokenizerJSON,
} from './tokenizer-files.js';
export * from './train/index.js';
