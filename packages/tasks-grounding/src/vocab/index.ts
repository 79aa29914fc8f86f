// Vocabulary growth: resizing an LLM's embeddings after Tokenizer.addTokens.
export { type ResizeTokenEmbeddingsOptions, resizeTokenEmbeddings } from './resize-embeddings.js';
