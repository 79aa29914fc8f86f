// tfjs-core alone registers no gradients (the @tensorflow/tfjs umbrella does): without this import every
// tf.grad fails with "gradient function not found". The file is ESM with extensionless imports, so in the
// built package it must be bundled (tsup noExternal), not loaded by Node from node_modules.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
