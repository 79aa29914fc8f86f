// @vistune/core public API. tfjs-core is re-exported so every vistune package shares one engine instance.
export * as tf from '@tensorflow/tfjs-core';
export * from './backend/index.js';
export * from './bench/index.js';
export * from './data/index.js';
export * from './generation/index.js';
export * from './io/index.js';
export * from './llm/index.js';
export type * from './llm/types.js';
export * from './multimodal/index.js';
export * from './pipeline/index.js';
export * from './nn/index.js';
export * from './ops/index.js';
export * from './optim/index.js';
export { register } from './register.js';
export * from './registry/index.js';
export * from './tokenizer/index.js';
export * from './train/index.js';
/** zod 4, so plugins declare config schemas with the same copy the registry validates with. */
export { z } from 'zod';
