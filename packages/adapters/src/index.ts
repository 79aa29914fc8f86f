// @vistune/adapters: connectors from encoder features to the LLM's embedding space.
export * from './config.js';
export { FilmProjector } from './film.js';
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
export { register } from './register.js';
