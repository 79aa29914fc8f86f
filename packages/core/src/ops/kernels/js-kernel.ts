// Fused kernels written in JS over the backend's own memory: on wasm, views into the wasm heap (no copy in or
// out); on cpu, the backend's value arrays. One pass over the data replaces a chain of tfjs kernels, each of
// which would allocate and stream a full intermediate.
import * as tf from '@tensorflow/tfjs-core';

export type Values = Float32Array | Int32Array | Uint8Array;

interface WasmBackendLike {
  typedArrayFromHeap(info: tf.TensorInfo): Values;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
interface CpuBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/** Backends the JS kernels are registered on. */
export const JS_KERNEL_BACKENDS = ['wasm', 'cpu'] as const;
type JsKernelBackend = (typeof JS_KERNEL_BACKENDS)[number];

export interface OutputSpec {
  shape: number[];
  dtype: 'float32' | 'int32';
}

/**
 * Runs `body` with views of the inputs and of freshly allocated outputs (uninitialised on wasm: write every
 * element). Outputs are allocated before any view is taken: an allocation can grow the wasm heap, which
 * detaches views taken earlier.
 */
function runOnViews(
  backendName: JsKernelBackend,
  backend: object,
  inputs: tf.TensorInfo[],
  outputs: OutputSpec[],
  body: (inputs: Values[], outputs: Values[]) => void,
): tf.TensorInfo[] {
  if (backendName === 'wasm') {
    const wasm = backend as WasmBackendLike;
    const infos = outputs.map((o) => wasm.makeOutput(o.shape, o.dtype));
    body(
      inputs.map((i) => wasm.typedArrayFromHeap(i)),
      infos.map((i) => wasm.typedArrayFromHeap(i)),
    );
    return infos;
  }
  const cpu = backend as CpuBackendLike;
  const values = outputs.map((o) =>
    o.dtype === 'int32' ? new Int32Array(sizeOf(o.shape)) : new Float32Array(sizeOf(o.shape)),
  );
  body(
    inputs.map((i) => cpu.readSync(i.dataId) as Values),
    values,
  );
  return outputs.map((o, k) => cpu.makeTensorInfo(o.shape, o.dtype, values[k]));
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface JsKernel<Attrs> {
  name: string;
  /** Input names in the order `compute` receives them. */
  inputs: readonly string[];
  outputs: (inputs: tf.TensorInfo[], attrs: Attrs) => OutputSpec[];
  compute: (inputs: Values[], outputs: Values[], attrs: Attrs, inputInfos: tf.TensorInfo[]) => void;
  /** For kernels used under a gradient tape: the gradient of each input from dy (and the inputs). */
  grad?: (dy: tf.Tensor, inputs: tf.Tensor[], attrs: Attrs) => tf.Tensor[];
}

const registered = new Set<string>();

/** Registers the kernel on every JS-kernel backend (once). */
export function registerJsKernel<Attrs>(kernel: JsKernel<Attrs>): void {
  if (registered.has(kernel.name)) return;
  for (const backendName of JS_KERNEL_BACKENDS) {
    tf.registerKernel({
      kernelName: kernel.name,
      backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const infos = kernel.inputs.map((n) => {
          const info = (inputs as Record<string, tf.TensorInfo | undefined>)[n];
          if (!info) throw new Error(`${kernel.name}: input "${n}" is missing`);
          return info;
        });
        const a = attrs as unknown as Attrs;
        const outs = runOnViews(backendName, backend, infos, kernel.outputs(infos, a), (ins, os) =>
          kernel.compute(ins, os, a, infos),
        );
        return outs.length === 1 ? outs[0] : outs;
      },
    });
  }
  const grad = kernel.grad;
  if (grad) {
    tf.registerGradient({
      kernelName: kernel.name,
      inputsToSave: [...kernel.inputs],
      gradFunc: (dy, saved, attrs) => {
        const grads = grad(dy as tf.Tensor, saved, attrs as unknown as Attrs);
        return Object.fromEntries(kernel.inputs.map((n, i) => [n, () => grads[i]]));
      },
    });
  }
  registered.add(kernel.name);
}

/** Runs a registered JS kernel through the engine (so tidy/dispose and the tape see its outputs). */
export function runJsKernel<Attrs extends object>(
  kernel: JsKernel<Attrs>,
  inputs: Record<string, tf.Tensor>,
  attrs: Attrs,
): tf.Tensor[] {
  registerJsKernel(kernel);
  const out = tf
    .engine()
    .runKernel(kernel.name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as
    | tf.Tensor
    | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}
