// Backends: choosing, probing and checking tfjs backends, and the kernel shims that make wasm trainable.
export type { BackendInfo, BackendName, BackendProvider, BackendStatus, OpCheckResult } from './types.js';
export { initBackend, probeBackends, currentBackend, BACKEND_NAMES, BACKEND_ENV_VAR, type InitBackendOptions } from './init.js';
export { registerKernelShims, WASM_SHIMMED_KERNELS } from './kernel-shims.js';
export { checkBackend, OP_FAMILIES, type CheckBackendOptions } from './check.js';
