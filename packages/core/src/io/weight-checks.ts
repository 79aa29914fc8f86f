// Checks on weights as they are copied into parameters: a float parameter must come from a float tensor (an
// I16/I32/U8 tensor would load as raw integers), and its values must be finite (a NaN weight poisons every
// output silently). Loaders that never see Module options get the NaN/Inf exemption from a scope.
import { AsyncLocalStorage } from 'node:async_hooks';
import type * as tf from '@tensorflow/tfjs-core';
import { firstNonfiniteIndex, tensorOrigin } from './safetensors-read.js';

const nonfiniteScope = new AsyncLocalStorage<boolean>();

/**
 * Runs `load` with the NaN/Inf weight check off for every loadStateDict inside it (the CLI's
 * --allow-nonfinite), however deep the loaders nest.
 */
export function allowNonfiniteWeights<T>(load: () => Promise<T>): Promise<T> {
  return nonfiniteScope.run(true, load);
}

/** Whether the caller is inside allowNonfiniteWeights. */
export function nonfiniteWeightsAllowed(): boolean {
  return nonfiniteScope.getStore() ?? false;
}

function describeTensor(tensor: tf.Tensor, source: string | undefined): string {
  const origin = tensorOrigin(tensor);
  if (origin) return `tensor '${origin.name}' in ${origin.file}`;
  return source ? `the tensor given in ${source}` : 'the tensor given';
}

/**
 * Why `tensor` may not be loaded into the parameter `param` (dtype `paramDtype`), or null when it may.
 * `source` names where the weights came from when the tensor was not read from a file.
 */
export function loadedWeightProblem(
  param: string,
  paramDtype: tf.DataType,
  tensor: tf.Tensor,
  opts: { source?: string; allowNonfinite?: boolean } = {},
): string | null {
  if (paramDtype !== 'float32') return null;
  const origin = tensorOrigin(tensor);
  if (tensor.dtype !== 'float32') {
    const stored = origin ? origin.dtype : tensor.dtype;
    return (
      `${param}: ${describeTensor(tensor, opts.source)} is stored as ${stored}, an integer type, but the parameter is float: ` +
      're-export the weights with a float dtype (F32, F16 or BF16); integer (quantised) checkpoints are not supported'
    );
  }
  if (opts.allowNonfinite ?? nonfiniteWeightsAllowed()) return null;
  const bad = origin ? origin.firstNonfinite : firstNonfiniteIndex(tensor.dataSync());
  if (bad < 0) return null;
  const value = tensor.dataSync()[bad];
  return (
    `${param}: ${describeTensor(tensor, opts.source)} holds ${value} at flat index ${bad}: the weights are corrupt ` +
    '(re-download or re-export them, or resume from an earlier checkpoint); pass allowNonfinite (--allow-nonfinite) to load them anyway'
  );
}
