// Backends: choosing, probing and checking tfjs backends, and the kernel shims that make wasm trainable.

export { type CheckBackendOptions, checkBackend, OP_FAMILIES } from './check.js';
export { hostRows, hostValues } from './host-values.js';
export {
  BACKEND_ENV_VAR,
  BACKEND_NAMES,
  currentBackend,
  type InitBackendOptions,
  initBackend,
  probeBackends,
} from './init.js';
export { registerKernelShims, WASM_SHIMMED_KERNELS } from './kernel-shims.js';
export {
  describeNativeMatmul,
  disableNativeMatmul,
  type EnableNativeMatmulOptions,
  enableNativeMatmul,
  NATIVE_ENV_VAR,
  NATIVE_THREADS_ENV_VAR,
  type NativeMatmulStatus,
  nativeMatmulStatus,
} from './native.js';
export type { BackendInfo, BackendName, BackendProvider, BackendStatus, OpCheckResult } from './types.js';
