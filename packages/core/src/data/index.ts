// Instruction data: LLaVA JSON/JSONL and triplet readers, conversation templates with label masks,
// example building (image expansion, truncation), and the batch loader the trainer pulls from.
export {
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
  type TokenizedSegments,
  tokenizeSegments,
  withHeadTargets,
} from './examples.js';
export {
  disposeMultimodalBatch,
  type ImageLoader,
  InstructionDataLoader,
  type InstructionDataLoaderOptions,
} from './loader.js';
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
  describeLocation,
  IMAGE_MARKER,
  type ParseRecordOptions,
  parseRecord,
  type RecordLocation,
  type Sample,
  type SampleResult,
  type Turn,
  type TurnRole,
} from './samples.js';
export {
  type DataStats,
  emptyDataStats,
  formatDataStats,
  recordSkip,
  SKIP_REASONS,
  type SkipReason,
  skippedTotal,
} from './stats.js';
export {
  CHATML_SYSTEM,
  type ConversationTemplate,
  getTemplate,
  LLAVA_LLAMA_SYSTEM,
  LLAVA_V1_SYSTEM,
  type Segment,
  TEMPLATE_NAMES,
  type TemplateContext,
  TemplateMismatchError,
  type TemplateName,
  type TemplateOptions,
  VICUNA_V1_SYSTEM,
} from './templates.js';
export type { BatchSource, BatchSourceState, HeadTargets, HeadTargetsReader } from './types.js';
