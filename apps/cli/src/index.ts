// The `vistune` package: the command line and the high-level API it is built on.
export {
  type LoadModelOptions,
  loadModel,
  type MediaSource,
  type ModalityRuntime,
  type PreparedRequest,
  VisionLanguageModel,
  type VlmContentPart,
  type VlmGenerateOptions,
  type VlmMessage,
  type VlmOutput,
  type VlmRequest,
  wrapModel,
} from './api/model.js';
export {
  type Pipeline,
  type PipelineInput,
  type PipelineOutput,
  type PipelineTask,
  pipeline,
} from './api/pipeline.js';
export { createVistuneRegistry, type RegistryOptions } from './api/registry.js';
export { buildProgram } from './program.js';
