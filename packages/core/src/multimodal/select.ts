// FeatureSelect: HF LLaVA `get_image_features` — pick hidden_states[layer(s)], drop CLS for 'default',
// concatenate several layers on the feature axis.
import * as tf from '@tensorflow/tfjs-core';
import type { EncoderOutput, FeatureLayout, FeatureSelect, ModalityEncoder } from './types.js';

/** The requested hidden-state indices, as a list. */
export function selectedLayers(select: FeatureSelect): number[] {
  return typeof select.layer === 'number' ? [select.layer] : [...select.layer];
}

/** Width of the selected features: encoder width × number of selected layers (the adapter's inDim). */
export function selectedFeatureDim(encoderHiddenSize: number, select: FeatureSelect): number {
  return encoderHiddenSize * selectedLayers(select).length;
}

/** Layout of the features after selection: 'default' removes the prefix (CLS) tokens. */
export function selectedLayout(layout: FeatureLayout, select: FeatureSelect): FeatureLayout {
  if (select.strategy === 'full' || layout.prefixTokens === 0) return layout;
  return { ...layout, tokens: layout.tokens - layout.prefixTokens, prefixTokens: 0 };
}

/** Applies the selection to an encoder output that returned exactly `selectedLayers(select)`. */
export function applyFeatureSelect(
  out: EncoderOutput,
  select: FeatureSelect,
): { features: tf.Tensor3D; layout: FeatureLayout } {
  const layers = selectedLayers(select);
  if (out.hiddenStates.length !== layers.length) {
    throw new Error(
      `FeatureSelect: asked the encoder for hidden states [${layers}] but got ${out.hiddenStates.length} tensors; ` +
        'the encoder must return one tensor per requested index (EncodeOptions.hiddenStates)',
    );
  }
  const layout = selectedLayout(out.layout, select);
  const drop = out.layout.tokens - layout.tokens;
  const features = tf.tidy(() => {
    const picked = out.hiddenStates.map((h) => (drop > 0 ? tf.slice(h, [0, drop, 0], [-1, -1, -1]) : h));
    return (picked.length === 1 ? picked[0] : tf.concat(picked, -1)) as tf.Tensor3D;
  });
  return { features, layout };
}

/** Runs the encoder for the selected layers only and applies the selection. */
export function encodeAndSelect<Batch>(
  encoder: ModalityEncoder<Batch>,
  batch: Batch,
  select: FeatureSelect,
): { features: tf.Tensor3D; layout: FeatureLayout } {
  const out = encoder.forward(batch, { hiddenStates: selectedLayers(select) });
  const selected = applyFeatureSelect(out, select);
  for (const h of out.hiddenStates) if (h !== selected.features) h.dispose();
  return selected;
}
