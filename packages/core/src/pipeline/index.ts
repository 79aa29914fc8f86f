// The model pipeline: families that load/save/create models, compositions as data, media kinds and processors.
export {
  causalLmFamily,
  compositionJsonSchema,
  compositionToJson,
  createComposite,
  parseCompositionJson,
  textOnlyModel,
  VISTUNE_MODEL_TYPE,
  vistuneFamily,
} from './composite.js';
export {
  acceptedFields,
  type CreateModelOptions,
  type ModelFamily,
  modelFamily,
  registerModelFamily,
  type SaveModelOptions,
  schemaAccepts,
} from './family.js';
export { createModel, familyForModelType, loadModelPlugins, loadPretrained } from './load.js';
export { firstNumber, normaliseAnswer, registerAnswerMetrics, tokenF1, yesNo } from './metrics.js';
export { chatFromJson, chatToJson, pluginsUsed, writeLlavaProcessorConfig } from './saved.js';
export { registerTemplates, templateEntrySchema } from './templates.js';
export type * from './types.js';
