// @vistune/encoders: Vision Transformer (HF CLIP / SigLIP vision towers) and their image processors.

export {
  type HfImageProcessorConfig,
  hfImageProcessorConfigSchema,
  type ImageProcessorKind,
  type ImageProcessorSettings,
  type ParseImageProcessorOptions,
  parseImageProcessorConfig,
  type ResizeTarget,
} from './image/config.js';
export {
  ImageProcessor,
  type ProcessedImage,
  resizeOutputSize,
  stackPixelValues,
} from './image/processor.js';
export { PIL_RESAMPLE_IDS, type ResampleFilter, resizeRgb } from './image/resample.js';
export {
  centerCrop,
  checkImageSize,
  decodeImage,
  expandToSquare,
  type ImageInput,
  MAX_IMAGE_PIXELS,
  MAX_RESIZED_EDGE,
  type RgbImage,
  toRgbImage,
} from './image/rgb.js';
export { ImageTransform, type ImageTransformSteps } from './image/transform.js';
export {
  type ImageProcessorEntryConfig,
  imageProcessorEntrySchema,
  register,
  type VisionEncoderEntryConfig,
  visionEncoderEntrySchema,
} from './register.js';
export {
  type HfVisionConfig,
  hfVisionConfigSchema,
  parseVisionConfig,
  patchGrid,
  type VisionModelType,
  type VisionTransformerConfig,
  validateVisionConfig,
} from './vit/config.js';
export { patchify, VisionEmbeddings } from './vit/embeddings.js';
export { EncoderLayer, Mlp, ModuleList, SelfAttention } from './vit/layers.js';
export {
  detectVisionPrefix,
  type LoadHFWeightsOptions,
  type LoadHFWeightsResult,
  VisionTransformer,
  type VisionTransformerOptions,
  type VisionTransformerOutput,
} from './vit/model.js';
export { AttentionPoolingHead } from './vit/pooling-head.js';
export {
  type LoadPretrainedVisionOptions,
  loadPretrainedVisionTransformer,
  selectVisionConfig,
} from './vit/pretrained.js';
export {
  CNN_VISION_MODEL_TYPE,
  type CnnVisionConfig,
  cnnVisionConfigSchema,
  parseCnnVisionConfig,
} from './cnn/config.js';
export { CnnVisionEncoder } from './cnn/model.js';
export * from './pretrain/index.js';
