// Checkpoint IO: safetensors read/write (single and sharded), half-precision conversion, JSON config files.
export * from './fs-errors.js';
export * from './half.js';
export * from './json.js';
export {
  isSafetensorsDtype,
  MAX_SAFETENSORS_HEADER_BYTES,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './safetensors-format.js';
export {
  decodeSafetensorsBytes,
  firstNonfiniteIndex,
  type LoadSafetensorsOptions,
  loadSafetensors,
  readSafetensorsHeader,
  SafetensorsReader,
  type TensorOrigin,
  tensorOrigin,
} from './safetensors-read.js';
export * from './safetensors-write.js';
export * from './sharded.js';
export * from './weight-checks.js';
