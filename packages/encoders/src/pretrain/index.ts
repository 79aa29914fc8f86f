// Encoder pretraining for any image data: supervised (objects / labels), contrastive (CLIP, SigLIP), masked-patch.
export * from './objectives.js';
export * from './probe.js';
export * from './records.js';
export * from './run.js';
export * from './tower.js';
