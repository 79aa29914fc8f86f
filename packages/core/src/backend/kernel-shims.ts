// JS kernels for the gaps in tfjs 4.22's pure backends: wasm has no UnsortedSegmentSum (gather's gradient),
// Conv2DBackpropFilter or depthwise-conv gradients; cpu's UnsortedSegmentSum loops over every segment
// (O(segments · N · D): minutes for a 32k-vocab embedding gradient), so it is replaced by a scatter-add.
import * as tf from '@tensorflow/tfjs-core';

type Values = tf.backend_util.TypedArray;

/** The two calls every JS kernel needs, whichever backend holds the data. */
interface JsKernelBackend {
  read(info: tf.TensorInfo): Values;
  make(shape: number[], dtype: tf.DataType, values: Values): tf.TensorInfo;
}

interface WasmBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: tf.backend_util.BackendValues,
  ): tf.TensorInfo;
}
interface CpuBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

function jsBackend(name: 'wasm' | 'cpu', backend: object): JsKernelBackend {
  if (name === 'wasm') {
    const b = backend as WasmBackendLike;
    return {
      read: (t) => b.readSync(t.dataId) as Values,
      make: (s, d, v) => b.makeOutput(s, d, undefined, v),
    };
  }
  const b = backend as CpuBackendLike;
  return { read: (t) => b.readSync(t.dataId) as Values, make: (s, d, v) => b.makeTensorInfo(s, d, v) };
}

/** out[ids[i], :] += x[i, :]; ids outside [0, numSegments) are dropped (TF semantics). */
export function scatterAddRows(
  x: Values,
  ids: Values,
  rowSize: number,
  numSegments: number,
  out: Values,
): void {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * rowSize;
    const dst = s * rowSize;
    for (let j = 0; j < rowSize; j++) out[dst + j] += x[src + j];
  }
}

function unsortedSegmentSumKernel(backendName: 'wasm' | 'cpu'): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const numSegments = (attrs as { numSegments: number }).numSegments;
    const io = jsBackend(backendName, backend);
    const rowShape = x.shape.slice(segmentIds.shape.length);
    const rowSize = rowShape.reduce((a, b) => a * b, 1);
    const out =
      x.dtype === 'int32' ? new Int32Array(numSegments * rowSize) : new Float32Array(numSegments * rowSize);
    scatterAddRows(io.read(x), io.read(segmentIds), rowSize, numSegments, out);
    return io.make([numSegments, ...rowShape], x.dtype, out);
  };
}

/** Runs the cpu backend's kernel on copies of the wasm inputs (for rare kernels whose cost is dominated elsewhere). */
function delegateToCpu(kernelName: string): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const wasm = backend as WasmBackendLike;
    const cpu = tf.findBackend('cpu') as unknown as CpuBackendLike | null;
    const cpuKernel = tf.getKernel(kernelName, 'cpu');
    if (cpu == null || cpuKernel == null)
      throw new Error(`kernel-shims: ${kernelName} on wasm needs the cpu backend registered`);
    const cpuInputs: Record<string, tf.TensorInfo> = {};
    for (const [name, info] of Object.entries(inputs)) {
      if (info == null) continue;
      cpuInputs[name] = {
        dataId: cpu.write(wasm.readSync(info.dataId), info.shape, info.dtype),
        shape: info.shape,
        dtype: info.dtype,
      };
    }
    const result = cpuKernel.kernelFunc({
      inputs: cpuInputs,
      attrs,
      backend: cpu as unknown as tf.KernelBackend,
    });
    const cpuOutputs = Array.isArray(result) ? result : [result];
    const outputs = cpuOutputs.map((o) =>
      wasm.makeOutput(o.shape, o.dtype, undefined, cpu.readSync(o.dataId)),
    );
    for (const t of [...Object.values(cpuInputs), ...cpuOutputs]) cpu.disposeData(t.dataId, true);
    return Array.isArray(result) ? outputs : outputs[0];
  };
}

/** Kernels added to wasm by registerKernelShims (exported for checks and reports). */
export const WASM_SHIMMED_KERNELS = [
  'UnsortedSegmentSum',
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
] as const;

function replaceKernel(kernelName: string, backendName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, backendName) != null) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc });
}

/**
 * wasm's Identity copies the whole buffer, and tfjs clones every tensor a kernel or custom gradient saves for
 * the backward: a tiny train step copied its [508, 32064] logits twice (11 ms, 130 MB). Sharing the buffer, as
 * cpu's Identity and wasm's own Reshape do, is safe because no kernel writes into its inputs.
 */
function sharedIdentity(copying: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return copying(args);
    (args.backend as unknown as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

const shimmed = new Set<string>();

/** Registers the JS kernels for a backend once it is registered with tfjs (idempotent). Only wasm and cpu need them. */
export function registerKernelShims(backendName: string): void {
  if (shimmed.has(backendName)) return;
  if (backendName === 'wasm') {
    replaceKernel('UnsortedSegmentSum', 'wasm', unsortedSegmentSumKernel('wasm'));
    const identity = tf.getKernel('Identity', 'wasm');
    if (identity) replaceKernel('Identity', 'wasm', sharedIdentity(identity.kernelFunc));
    for (const k of WASM_SHIMMED_KERNELS.slice(1)) {
      if (tf.getKernel(k, 'wasm') == null)
        tf.registerKernel({ kernelName: k, backendName: 'wasm', kernelFunc: delegateToCpu(k) });
    }
  } else if (backendName === 'cpu') {
    replaceKernel('UnsortedSegmentSum', 'cpu', unsortedSegmentSumKernel('cpu'));
  } else {
    return;
  }
  shimmed.add(backendName);
}
