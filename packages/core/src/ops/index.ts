// The op layer: every model calls these instead of raw tf ops, so backend knowledge lives here once
// (policy.ts says which form each backend gets; custom gradients avoid tfjs's slow or missing ones).

export {
  type ActivationName,
  activation,
  gelu,
  geluTanh,
  quickGelu,
  silu,
  siluTimes,
} from './activations.js';
export { type AdamWHyper, adamwUpdate } from './adamw.js';
export { type AttentionOptions, attention } from './attention.js';
export { variableGradsFreeing } from './backprop.js';
export { type CustomGradResult, customGrad } from './custom-grad.js';
export { embedding } from './embedding.js';
export { crossEntropy } from './loss.js';
export { linear, matmul, rawMatmul, transposeLast2 } from './matmul.js';
export { layerNorm, rmsNorm } from './norm.js';
export { type OpPolicy, opPolicy, setOpPolicy } from './policy.js';
export { dequantizeRowsInt8, type Int8Rows, int8Linear, quantizeRowsInt8 } from './quantize.js';
export { addSameShape, permute, reshape } from './shape.js';
export { useWasmThreads, wasmThreads } from './wasm-threads.js';
export { clearTransposedWeightCache } from './weight-cache.js';
