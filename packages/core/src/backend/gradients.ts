// tfjs-core alone registers no gradients (the @tensorflow/tfjs umbrella does): without them every tf.grad
// fails with "gradient function not found". The registering file is ESM with extensionless imports, which
// Node cannot load from node_modules, so the built @vistune/core must bundle it (tsup noExternal).
import * as tf from '@tensorflow/tfjs-core';

/** Comparisons are piecewise constant: zero gradient. tfjs registers one for GreaterEqual only, so a where()
 * whose condition is computed from a differentiated tensor failed with "gradient function not found for Greater". */
const COMPARISON_KERNELS = ['Greater', 'Less', 'LessEqual', 'Equal', 'NotEqual'];

function registerComparisonGradients(): void {
  for (const kernelName of COMPARISON_KERNELS) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => ({
        a: () => tf.zerosLike(saved[0]),
        b: () => tf.zerosLike(saved[1]),
      }),
    });
  }
}

/** Registers every tfjs-core gradient once (plus zero gradients for comparisons); called by initBackend. */
export async function registerAllGradients(): Promise<void> {
  registerComparisonGradients();
  if (tf.getGradient('BatchMatMul') != null && tf.getGradient('Sum') != null) return;
  try {
    await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  } catch (e) {
    throw new Error(
      `Cannot load tfjs gradients (${e instanceof Error ? e.message.split('\n')[0] : String(e)}): ` +
        'packages/core/tsup.config.ts must bundle them: noExternal: [/register_all_gradients/]',
    );
  }
}
