// RefCOCO / RefCOCO+ / RefCOCOg converters and COCO mask decoding.
export {
  type CocoInstances,
  convertRefcoco,
  convertRefcocoFiles,
  instancesFileSchema,
  type LlavaTurnRecord,
  type RefcocoConversion,
  type RefcocoConvertOptions,
  type RefcocoRecord,
  type RefcocoRefs,
  type RefcocoSkipReason,
  type RefcocoTask,
  refsFileSchema,
} from './convert.js';
export {
  type CocoRle,
  type CocoSegmentation,
  decodeRleString,
  encodeRleString,
  maskToRle,
  polygonsToMask,
  rleToMask,
  segmentationToMask,
} from './masks.js';
export {
  checkTemplates,
  fillTemplate,
  REC_TEMPLATES,
  REG_TEMPLATES,
  RES_ANSWERS,
  RES_TEMPLATES,
} from './templates.js';
