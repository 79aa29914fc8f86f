// Grounding and segmentation metrics: REC Acc@0.5, LISA gIoU/cIoU, COCO detection mAP.
export {
  type ClassLabel,
  COCO_IOU_THRESHOLDS,
  type Detection,
  DetectionMap,
  type DetectionMapOptions,
  type DetectionMapResult,
  type GroundTruthBox,
} from './detection-map.js';
export {
  type BinaryMask,
  binarizeLogits,
  MaskIoU,
  type MaskIoUResult,
  maskIntersectionUnion,
} from './mask-iou.js';
export {
  RecAccuracy,
  type RecAccuracyOptions,
  type RecAccuracyResult,
  recAccuracy,
  recPredictionFromText,
} from './rec.js';
export { detectionMapSchema, maskIoUSchema, recAccuracySchema, registerMetrics } from './register.js';
