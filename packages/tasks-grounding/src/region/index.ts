// Region inputs: RoIAlign, the region encoder (a modality over the image tower) and its adapter.
export { RegionProjector, type RegionProjectorOptions } from './region-adapter.js';
export {
  REGION_PLACEHOLDER,
  RegionEncoder,
  type RegionEncoderOptions,
  regionItem,
} from './region-encoder.js';
export { regionMlpSchema, regionRoiAlignSchema, registerRegion } from './register.js';
export { type RoIAlignOptions, roiAlign, roiAlignWeights } from './roi-align.js';
