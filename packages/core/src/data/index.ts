// Instruction data: LLaVA JSON/JSONL and triplet readers, conversation templates with label masks,
// example building (image expansion, truncation), and the batch loader the trainer pulls from.
export {
  DEFAULT_MAX_SKIP_FRACTION,
  dataFileList,
  type InstructionData,
  type LoadInstructionDataOptions,
  loadInstructionData,
} from './dataset.js';
export {
  type BuildExampleOptions,
  buildExample,
  createExampleBuilder,
  type Example,
  type ExampleResult,
  IGNORE_INDEX,
  type ImageTokenSpec,
  type MediaTokenSpec,
  mediaKindsOf,
  type ResolvedMediaToken,
  resolveMediaTokens,
  type TokenizedSegments,
  tokenizeSegments,
  withHeadTargets,
} from './examples.js';
export {
  disposeMultimodalBatch,
  type ImageLoader,
  type InstructionDataFileOptions,
  InstructionDataLoader,
  type InstructionDataLoaderOptions,
  type MediaLoader,
} from './loader.js';
export {
  cachedMediaLoader,
  type MediaCacheOptions,
  type MediaCacheStats,
} from './media-cache.js';
export {
  type DataFileFormat,
  detectFormat,
  type RawRecord,
  type ReadSamplesOptions,
  readRecords,
  readSamples,
  readSamplesWithRecords,
} from './readers.js';
export {
  type BatchOrderOptions,
  batchesPerEpoch,
  type ExampleShape,
  epochBatches,
} from './sampler.js';
export {
  checkMediaKinds,
  DEFAULT_MAX_TURN_CHARS,
  describeLocation,
  IMAGE_KIND,
  IMAGE_MARKER,
  type MediaKindSpec,
  mediaOf,
  type ParseRecordOptions,
  parseRecord,
  type RecordLocation,
  type Sample,
  type SampleResult,
  type Turn,
  type TurnRole,
} from './samples.js';
export {
  countMedia,
  type DataStats,
  type DataStatsJson,
  dataStatsJson,
  emptyDataStats,
  formatDataStats,
  type MediaProblem,
  type MediaSkipReason,
  mediaSkipReason,
  recordSkip,
  SKIP_REASONS,
  type Skip,
  type SkippedRecord,
  type SkipReason,
  sampleSkip,
  skippedTotal,
} from './stats.js';
export {
  CHATML_SYSTEM,
  type ConversationTemplate,
  getTemplate,
  LLAVA_LLAMA_SYSTEM,
  LLAVA_V1_SYSTEM,
  type MarkerToken,
  type Segment,
  TEMPLATE_NAMES,
  type TemplateContext,
  TemplateMismatchError,
  type TemplateName,
  type TemplateOptions,
  VICUNA_V1_SYSTEM,
} from './templates.js';
export type { BatchSource, BatchSourceState, HeadTargets, HeadTargetsReader } from './types.js';
