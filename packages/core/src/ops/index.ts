// The op layer: every model calls these instead of raw tf ops, so backend knowledge lives here once
// (policy.ts says which form each backend gets; custom gradients avoid tfjs's slow or missing ones).
export { matmul, linear, rawMatmul, transposeLast2 } from './matmul.js';
export { rmsNorm, layerNorm } from './norm.js';
export { attention, type AttentionOptions } from './attention.js';
export { crossEntropy } from './loss.js';
export { embedding } from './embedding.js';
export { gelu, geluTanh, quickGelu, silu, activation, type ActivationName } from './activations.js';
export { opPolicy, setOpPolicy, type OpPolicy } from './policy.js';
export { clearTransposedWeightCache } from './weight-cache.js';
export { customGrad, type CustomGradResult } from './custom-grad.js';
