/** A tfjs backend vistune can run on. 'tensorflow' is libtensorflow via tfjs-node-gpu or tfjs-node. */
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** The package that provides a backend; 'tensorflow' has two (GPU and CPU builds of libtensorflow). */
export type BackendProvider = 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The tfjs backend name now active (tf.getBackend()). */
  name: BackendName;
  provider: BackendProvider;
  /** True when kernels run on a GPU (tfjs-node-gpu with a CUDA device, or a WebGPU adapter). */
  gpu: boolean;
  /** Human-readable detail: wasm SIMD/threads, the WebGPU adapter, whether libtensorflow found CUDA. */
  detail: string;
  /** Providers tried before this one in automatic selection, each with the reason it was skipped. */
  skipped: { provider: BackendProvider; reason: string }[];
}

export interface BackendStatus {
  provider: BackendProvider;
  backend: BackendName;
  /** npm package(s) that provide it. */
  packageName: string;
  available: boolean;
  /** Why it is unavailable (absent when available). */
  reason?: string;
  /** Detail when available (device, SIMD, ...). */
  detail?: string;
  /** How to get it. */
  howToGet: string;
}

export interface OpCheckResult {
  /** Op family, e.g. 'matmul', 'attention', 'conv2d'. */
  family: string;
  ok: boolean;
  /** Error message, or the largest relative difference from the cpu reference when that check failed. */
  error?: string;
  /** Largest |backend − cpu| / (|cpu| + 1e-3) over outputs and gradients (when cpu is available as reference). */
  maxRelDiffVsCpu?: number;
  ms: number;
}
