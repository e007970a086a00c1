import type * as tf from '@tensorflow/tfjs-core';

/**
 * How a kernel reaches tensor memory: allocate an output, view a tensor's values. On wasm these are
 * tfjs-backend-wasm's own methods over its heap; on skd's `native` backend (tfjs-backend-cpu's
 * storage) every tensor is its own typed array, with no 4 GB heap limit.
 */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU that memoryOf uses. */
interface CpuBackendLike {
  readonly data: { get(dataId: tf.DataId): { values?: tf.backend_util.BackendValues } | undefined };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  /** The native backend's pooled allocation (see NativeBackend). */
  allocate?(dtype: tf.DataType, count: number): tf.TypedArray;
  replaceValues?(dataId: tf.DataId, values: tf.backend_util.BackendValues): void;
}

const cpuMemories = new WeakMap<object, WasmBackendLike>();

/** A kernel's view of its backend's memory (see WasmBackendLike), for wasm and for the cpu-storage `native` backend. */
export function memoryOf(backend: unknown): WasmBackendLike {
  if (typeof (backend as Partial<WasmBackendLike>).typedArrayFromHeap === 'function') return backend as WasmBackendLike;
  const cpu = backend as CpuBackendLike;
  let memory = cpuMemories.get(cpu);
  if (!memory) {
    memory = {
      makeOutput: (shape, dtype) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const values = cpu.allocate
          ? cpu.allocate(dtype, n)
          : dtype === 'int32'
            ? new Int32Array(n)
            : dtype === 'bool'
              ? new Uint8Array(n)
              : new Float32Array(n);
        return cpu.makeTensorInfo(shape, dtype, values);
      },
      typedArrayFromHeap: (info) => {
        const entry = cpu.data.get(info.dataId);
        const values = entry?.values;
        if (!entry || !values || typeof values === 'string' || Array.isArray(values))
          throw new Error(`tensor [${info.shape.join(', ')}] (${info.dtype}) has no typed values on this backend`);
        // tfjs-backend-cpu casts int32 to float32 (and back) without converting the storage; the
        // kernels read the declared dtype, so the storage is converted once, in place.
        const wanted = info.dtype === 'float32' ? Float32Array : info.dtype === 'int32' ? Int32Array : undefined;
        if (wanted && !(values instanceof wanted)) {
          const converted = wanted.from(values as ArrayLike<number>);
          if (cpu.replaceValues) cpu.replaceValues(info.dataId, converted);
          else entry.values = converted;
        }
        return entry.values as tf.TypedArray;
      },
    };
    cpuMemories.set(cpu, memory);
  }
  return memory;
}

export type KernelArgs = Parameters<tf.KernelFunc>[0];
export type KernelResult = tf.TensorInfo | tf.TensorInfo[];
/** The stock kernel a native one falls back to for layouts or dtypes it does not cover. */
export type Fallback = (args: KernelArgs) => KernelResult;

export const size = (shape: readonly number[]): number => shape.reduce((x, y) => x * y, 1);

/** A tensor as rows of its last axis: (rows, width). */
export function rowsOf(x: tf.TensorInfo): { rows: number; width: number } {
  const width = x.shape[x.shape.length - 1] ?? 1;
  return { rows: width === 0 ? 0 : size(x.shape) / width, width };
}

/** A float32 view of a tensor on the wasm heap. Take views after allocating every output: allocation may grow the heap and detach older views. */
export function f32(backend: WasmBackendLike, info: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

export function i32(backend: WasmBackendLike, info: tf.TensorInfo): Int32Array {
  return backend.typedArrayFromHeap(info) as Int32Array;
}

/** Throws unless every input is float32 (the native kernels compute in float32 only). */
export function requireFloat32(kernel: string, inputs: Record<string, tf.TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t && t.dtype !== 'float32') throw new Error(`${kernel}: input ${name} must be float32, got ${t.dtype}`);
  }
}
