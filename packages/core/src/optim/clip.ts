import * as tf from '@tensorflow/tfjs-core';

/**
 * Inputs per tf.addN when summing squared norms: with its output that binds 8 storage buffers, WebGPU's
 * default per-shader limit (tfjs-webgpu binds every addN input; more made dawn drop the work, docs/gpu.md).
 */
export const NORM_ADDN_CHUNK = 7;

/**
 * torch.nn.utils.clip_grad_norm_ (L2): scales every gradient by min(1, maxNorm / (norm + 1e-6)) where norm is
 * the global L2 norm. Returns new tensors (inputs are not disposed) and the pre-clip norm. Reads the norm
 * synchronously (cpu, wasm, tfjs-node); clipByGlobalNormAsync is the same with an awaited read.
 */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: number } {
  checkMaxNorm(maxNorm);
  const norm = globalNorm(grads);
  return { grads: scaleToNorm(grads, norm, maxNorm), norm };
}

/** clipByGlobalNorm with the one device read awaited: the same values, and it runs on webgpu. */
export async function clipByGlobalNormAsync(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): Promise<{ grads: Map<string, tf.Tensor>; norm: number }> {
  checkMaxNorm(maxNorm);
  const norm = await globalNormAsync(grads);
  return { grads: scaleToNorm(grads, norm, maxNorm), norm };
}

function checkMaxNorm(maxNorm: number): void {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
}

function scaleToNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  norm: number,
  maxNorm: number,
): Map<string, tf.Tensor> {
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  const out = new Map<string, tf.Tensor>();
  // Below the threshold torch multiplies by exactly 1: a clone is the same values without the pass.
  for (const [name, g] of grads) out.set(name, coef === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, coef)));
  return out;
}

/**
 * Σ‖g‖² as a scalar tensor, folded left to right in addN chunks of NORM_ADDN_CHUNK inputs (the running total
 * first in each): the same float32 additions in the same order as one addN over every gradient on cpu and
 * wasm, without binding more buffers than WebGPU allows.
 */
export function squaredNormSum(grads: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    let total = squares.length === 1 ? squares[0] : tf.addN(squares.slice(0, NORM_ADDN_CHUNK));
    for (let i = NORM_ADDN_CHUNK; i < squares.length; i += NORM_ADDN_CHUNK - 1) {
      const chunk = squares.slice(i, i + NORM_ADDN_CHUNK - 1);
      total = tf.addN([total, ...chunk]);
    }
    return total as tf.Scalar;
  });
}

/** Global L2 norm over all gradients (one synchronous device read). */
export function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): number {
  if (grads.size === 0) return 0;
  const sq = squaredNormSum(grads);
  try {
    return Math.sqrt(sq.dataSync()[0]);
  } finally {
    sq.dispose();
  }
}

/** globalNorm with the read awaited (one read per call). */
export async function globalNormAsync(grads: ReadonlyMap<string, tf.Tensor>): Promise<number> {
  if (grads.size === 0) return 0;
  const sq = squaredNormSum(grads);
  try {
    return Math.sqrt((await sq.data())[0]);
  } finally {
    sq.dispose();
  }
}

/** Disposes every tensor of a gradient map and empties it. */
export function disposeGradients(grads: Map<string, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
  grads.clear();
}
