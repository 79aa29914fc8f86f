// LLaMA-family decoders (LLaMA, Qwen2, Mistral): config, model, KV cache, HF checkpoint load/save.
export type * from './types.js';
export * from './config.js';
export * from './rope.js';
export * from './kv-cache.js';
export * from './llama.js';
export * from './weights.js';
export * from './register.js';
