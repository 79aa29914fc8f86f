// @vistune/adapters: connectors from encoder features to the LLM's embedding space.
export * from './config.js';
export { FilmProjector } from './film.js';
export { FuyuProjector } from './fuyu.js';
export { LlamaAdapter, promptedLayers } from './llama-adapter.js';
export { LinearProjector } from './linear.js';
export { MlpProjector, mlpProjectorParamName } from './mlp.js';
export { PixelShuffleProjector, pixelShuffle } from './pixel-shuffle.js';
export {
  BlivaQFormerAdapter,
  InstructQFormerAdapter,
  instructionFromContext,
  QFormerAdapter,
  type QFormerInstruction,
  QFormerModel,
  qformerConfigFromHF,
} from './qformer.js';
export { CAbstractor, LdpProjector, adaptiveAvgPool } from './reducers.js';
export { register } from './register.js';
export { VisualExpertAdapter } from './visual-expert.js';
