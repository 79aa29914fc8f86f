export * from './module.js';
export * from './rng.js';
export * from './init.js';
export * from './linear.js';
export * from './embedding.js';
export * from './norm.js';
export * from './dropout.js';
