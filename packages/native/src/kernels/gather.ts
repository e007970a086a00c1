import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { size, type Fallback, type KernelArgs, memoryOf } from './wasm';

/** GatherV2 along axis 0 (embedding lookups) as row copies; other axes use the stock kernel. */
export function gatherKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const normalized = axis < 0 ? axis + x.shape.length : axis;
    if (x.dtype !== 'float32' || indices.dtype !== 'int32' || normalized !== 0 || (batchDims ?? 0) !== 0 || x.shape.length < 1) return fallback(args);
    const backend = memoryOf(args.backend);
    const rows = x.shape[0] as number;
    const inner = size(x.shape.slice(1));
    const count = size(indices.shape);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    const bad = addon.gatherRows(backend.typedArrayFromHeap(x) as Float32Array, ids, backend.typedArrayFromHeap(out) as Float32Array, count, inner, rows);
    if (bad >= 0) throw new Error(`gather index ${ids[bad]} (position ${bad}) is outside [0, ${rows})`);
    return out;
  };
}
