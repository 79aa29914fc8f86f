export * from './dropout.js';
export * from './embedding.js';
export * from './init.js';
export * from './linear.js';
export * from './lora.js';
export * from './module.js';
export * from './norm.js';
export * from './rng.js';
