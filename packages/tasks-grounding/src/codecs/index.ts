// Location codecs (Shikra, Qwen-VL, MiniGPT-v2, Kosmos-2) and their frames.
export { type Span, scanSpans, TextLocationCodec, type UnitParse, validUnitBox } from './base.js';
export { boxToUnit, type FrameMap, frameMap, squarePadding, unitToBox } from './frame.js';
export {
  KOSMOS2_STRUCTURE_TOKENS,
  Kosmos2Codec,
  type Kosmos2CodecOptions,
  patchIndexToken,
} from './kosmos2.js';
export { MiniGptV2Codec, type MiniGptV2CodecOptions } from './minigpt-v2.js';
export { QwenVlCodec, type QwenVlCodecOptions } from './qwen-vl.js';
export {
  createLocationCodec,
  kosmos2CodecSchema,
  LOCATION_CODEC_NAMES,
  type LocationCodecName,
  miniGptV2CodecSchema,
  qwenVlCodecSchema,
  registerCodecs,
  shikraCodecSchema,
} from './register.js';
export { ShikraCodec, type ShikraCodecOptions } from './shikra.js';
export {
  CODEC_FRAMES,
  type CodecFrame,
  type DecodeResult,
  type GroundedPhrase,
  type LocationCodec,
} from './types.js';
