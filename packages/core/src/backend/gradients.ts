// tfjs-core alone registers no gradients (the @tensorflow/tfjs umbrella does): without them every tf.grad
// fails with "gradient function not found". The registering file is ESM with extensionless imports, which
// Node cannot load from node_modules, so the built @vistune/core must bundle it (tsup noExternal).
import * as tf from '@tensorflow/tfjs-core';

/** Registers every tfjs-core gradient once; called by initBackend. */
export async function registerAllGradients(): Promise<void> {
  if (tf.getGradient('BatchMatMul') != null && tf.getGradient('Sum') != null) return;
  try {
    await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  } catch (e) {
    throw new Error(
      `Cannot load tfjs gradients (${e instanceof Error ? e.message.split('\n')[0] : String(e)}): ` +
        "packages/core/tsup.config.ts must bundle them: noExternal: [/register_all_gradients/]",
    );
  }
}
