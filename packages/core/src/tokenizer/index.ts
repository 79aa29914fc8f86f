export { Tokenizer } from './tokenizer.js';
export type { AddTokensOptions, TokenizerDecodeOptions, TokenizerEncodeOptions, SpecialTokens, TokenizerSources } from './tokenizer.js';
export type {
  ApplyChatTemplateOptions,
  ChatContentPart,
  ChatImagePart,
  ChatMessage,
  ChatTextPart,
} from './chat-template.js';
export type {
  AddedTokenJSON,
  ChatTemplateFile,
  NamedChatTemplate,
  SpecialTokensMapJSON,
  SpecialTokenValue,
  TokenizerConfigJSON,
  TokenizerJSON,
} from './tokenizer-files.js';
