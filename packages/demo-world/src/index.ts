// @vistune/demo-world: procedural scenes of coloured shapes and the visual instruction data built from them.
export { BoxCodec, type BoxFormat, DEFAULT_BOX_FORMAT } from './box-codec.js';
export {
  ALL_RECORD_KINDS,
  describeLayout,
  type LlavaTurn,
  OPTIONAL_RECORD_KINDS,
  QUESTION_KINDS,
  type QuestionKind,
  RECORD_KINDS,
  type RecordKind,
  type TurnKind,
  type TurnTruth,
  type WorldRecord,
} from './instructions.js';
export {
  instanceMap,
  instanceMapToPng,
  MASK_COVERAGE_THRESHOLD,
  renderObjectMasks,
} from './masks.js';
export {
  formatWorldScores,
  type KindScore,
  normaliseAnswer,
  parseCount,
  type ScoreOptions,
  scoreOneTurn,
  scoreWorldPredictions,
  tokenF1,
  type WorldPredictions,
  type WorldScores,
} from './metrics.js';
export { createRng, type Rng } from './random.js';
export { objectCoverage, type RgbImage, renderScene } from './render.js';
export {
  BACKGROUND_KINDS,
  type BackgroundKind,
  generateLayout,
  type LayoutOptions,
  type SceneBackground,
  type SceneLayout,
  type SceneObject,
} from './scene.js';
export {
  askSegmentation,
  SEGMENTATION_ANSWER_STYLES,
  SEGMENTATION_ANSWERS,
  SEGMENTATION_QUESTIONS,
  type SegmentationAnswer,
  type SegmentationAnswerStyle,
  segmentationTextSources,
} from './segmentation.js';
export {
  COLOUR_NAMES,
  COLOURS,
  type ColourName,
  type PixelBox,
  type Rgb,
  SHAPES,
  type ShapeName,
  SIZES,
  type SizeName,
} from './shapes.js';
export {
  buildWorldTokenizer,
  splitWorldPieces,
  vocabularyFromRecords,
  WORLD_CHAT_TEMPLATE,
  WORLD_SPECIAL_TOKENS,
  type WorldTokenizerFiles,
  type WorldVocabularyOptions,
  worldVocabulary,
  writeWorldTokenizer,
} from './tokenizer.js';
export {
  exampleRecord,
  type GeneratedScene,
  type GenerateWorldOptions,
  generateScene,
  generateWorld,
  loadWorldManifest,
  loadWorldSplit,
  SPLITS,
  type SplitName,
  type SplitSummary,
  sceneToPng,
  type WorldManifest,
  type WorldOptions,
} from './world.js';
