export * from './generate.js';
export * from './logits.js';
export * from './sampling.js';
export * from './stopping.js';
export * from './streamer.js';
