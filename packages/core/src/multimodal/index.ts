// Multimodal composition: contracts, feature selection, the splice and the model.
export type * from './types.js';
