// Multimodal composition: contracts, feature selection, the splice, the model, and HF LLaVA folders.

export {
  type CreateLlavaOptions,
  createLlava,
  type LlavaConfig,
  LlavaForConditionalGeneration,
  llavaCheckpointName,
  llavaFamily,
  loadLlava,
  parseLlavaConfig,
  type SaveLlavaOptions,
  saveLlava,
} from './llava.js';
export {
  type MediaInputs,
  type ModalitySpec,
  type MultimodalBatch,
  type MultimodalForwardOptions,
  MultimodalModel,
  type MultimodalModelOptions,
  type MultimodalOutput,
} from './model.js';
export {
  applyFeatureSelect,
  encodeAndSelect,
  selectedFeatureDim,
  selectedLayers,
  selectedLayout,
} from './select.js';
export {
  checkSlotCounts,
  countPlaceholders,
  expandPlaceholders,
  type ModalitySlots,
  spliceSlots,
} from './splice.js';
export type * from './types.js';
