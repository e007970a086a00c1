import type * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm the kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
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
