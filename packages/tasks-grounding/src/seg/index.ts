// LISA-style reasoning segmentation: the [SEG] head (text_hidden_fcs + SAM-style mask decoder), its losses,
// mask resampling to the original frame, segmentation batches with mask targets, model assembly and the
// `lisa_seg` task family.

export {
  type LisaSegHeadConfig,
  type LisaSegHeadInput,
  lisaSegDecoderSchema,
  lisaSegHeadConfig,
  lisaSegHeadOptions,
  lisaSegHeadSchema,
} from './config.js';
export {
  type BuildSegmentationOptions,
  type BuiltSegmentationData,
  buildSegmentationExamples,
  type LoadedImage,
  SegmentationBatchSource,
  type SegmentationBatchSourceOptions,
  type SegmentationExample,
  type SegmentationImageLoader,
  type SegmentationRecord,
} from './data.js';
export {
  type DecodeInput,
  gridPositionalEncoding,
  MaskDecoder,
  type MaskDecoderConfig,
  pixelUnshuffle2x,
} from './decoder.js';
export {
  FanInInitializer,
  LisaSegHead,
  type LisaSegHeadOptions,
  type SegHeadOutput,
  type SegMaskTarget,
} from './head.js';
export { type DiceOptions, diceLoss, sigmoidBceLoss } from './loss.js';
export {
  type AttachLisaHeadOptions,
  attachLisaHead,
  type GenerateSegmentation,
  generateAndSegment,
  type LisaModel,
  type LisaSegHeadSettings,
  SEG_TOKEN,
  segmentAnswer,
  segmentText,
  withVocabulary,
} from './model.js';
export { registerSeg } from './register.js';
export {
  type FrameTransform,
  interpolationMatrix,
  type OriginalFrame,
  originalFrameMatrices,
  resampleSeparable,
  resizeBilinear,
  resizeCoords,
  toOriginalFrame,
} from './resample.js';
export { type MaskSummary, maskSummary } from './summary.js';
export { segmentationTargets } from './targets.js';
export {
  type LisaSegTaskConfig,
  lisaAnswerMatch,
  lisaAnswerMatchSchema,
  lisaSegTask,
  lisaSegTaskSchema,
} from './task.js';
export {
  evaluateSegmentation,
  type LisaRun,
  prepareLisaRun,
  processorImageLoader,
  type SegmentationScores,
  trainLisa,
} from './train.js';
export { MlpBlock, TokenAttention, TwoWayBlock, type TwoWayOptions, TwoWayTransformer } from './two-way.js';
