// The embedded demo: model and run sizes, stage data, held-out evaluation, report and sample conversations.
export {
  type DemoModelSize,
  type DemoPlan,
  type DemoSize,
  type DemoStagePlan,
  demoLlavaConfig,
  demoPlan,
  demoPreprocessorConfig,
} from './config.js';
export {
  cachedImageLoader,
  captionRecords,
  type LlavaRecord,
  mergeByImage,
  type PixelProcessor,
  writeMergedTrain,
  writeRecords,
} from './data.js';
export {
  type EvalPrompt,
  evalPrompts,
  type GenerateAnswersOptions,
  generateAnswers,
  messagesBeforeTurn,
  shuffledMedia,
  splitTurns,
} from './evaluate.js';
export {
  DEMO_TARGETS,
  type DemoHeadline,
  type DemoMetrics,
  demoMetrics,
  formatDemoHeadline,
  headline,
  VQA_KINDS,
} from './report.js';
export {
  DEMO_STAGES,
  type DemoOptions,
  type DemoResult,
  defaultDemoWorkers,
  fitSteps,
  runDemo,
  type StepCalibration,
  TRAINED_PARAMETERS,
} from './run.js';
export { type SampleConversation, type SampleTurn, sampleConversations } from './samples.js';
export {
  type CellAccuracy,
  cellTargets,
  formatTowerSummary,
  pretrainVisionTower,
  type TowerPretrainOptions,
  type TowerPretrainPlan,
  type TowerPretrainResult,
} from './tower.js';
