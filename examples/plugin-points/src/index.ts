// vistune-plugin-points: a point-cloud task package for vistune (media kind, processor, encoder, adapter,
// metric, task family) and the world generator its tests and docs train on.
export { PointPoolAdapter, type PointPoolConfig, pointPoolSchema } from './adapter.js';
export { groupAnchors, type PointMlpConfig, PointMlpEncoder, pointMlpSchema } from './encoder.js';
export { type ShapeAccuracyConfig, shapeAccuracy, shapeAccuracySchema, shapeWord } from './metric.js';
export { type PointCloud, plyText, readPly } from './ply.js';
export {
  farthestPointOrder,
  normaliseToUnitSphere,
  PointsProcessor,
  type PointsProcessorConfig,
  pointsProcessorSchema,
} from './processor.js';
export { POINTS_KIND, register } from './register.js';
export {
  COLOUR_NAMES,
  COLOURS,
  type ObjectSpec,
  SHAPES,
  type ShapeName,
  SIZES,
  sampleObject,
  seededRandom,
} from './shapes.js';
export { POINTS_QA } from './task.js';
export {
  generatePointsWorld,
  type PointsRecord,
  type PointsWorldOptions,
  type PointsWorldSummary,
  recipeYaml,
} from './world/generate.js';
export { QUESTIONS, worldTexts } from './world/questions.js';
export {
  buildTokenizer,
  CHAT_TEMPLATE,
  POINTS_TOKEN_ID,
  SPECIAL_TOKENS,
  vocabulary,
  writeTokenizer,
} from './world/tokenizer.js';
