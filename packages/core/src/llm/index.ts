// LLaMA-family decoders (LLaMA, Qwen2, Mistral): config, model, KV cache, HF checkpoint load/save.

export * from './config.js';
export * from './kv-cache.js';
export * from './llama.js';
export * from './register.js';
export * from './rope.js';
export type * from './types.js';
export * from './weights.js';
