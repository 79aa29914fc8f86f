export { type BpeTrainingInput, type BpeTrainingResult, trainBpe } from './bpe.js';
export { TEMPLATE_TOKENIZER_SETTINGS, type TemplateTokenizerSettings } from './chat-templates.js';
export {
  type CorpusStats,
  type DataTrainedTokenizer,
  registeredMediaKinds,
  type TrainTokenizerOnDataOptions,
  trainTokenizerOnData,
} from './corpus.js';
export { BYTE_LEVEL_PRE_TOKENIZER, BYTE_SYMBOLS, countPieces, PieceSplitter, pieceText } from './pieces.js';
export {
  type BosTokenizerParts,
  type CoreSpecialTokens,
  DEFAULT_SPECIAL_TOKENS,
  type SplitWord,
  specialAddedToken,
  TOKENIZER_MODEL_KINDS,
  type TokenizerModelKind,
  type TokenizerTrainingReport,
  type TrainedTokenizer,
  type TrainTokenizerOptions,
  tokenizerJsonWithBos,
  trainTokenizer,
} from './train.js';
