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

/**
 * SpreadRows (see @skd/ops spreadRows): row copies into a pooled output, zeros for the padding slots.
 * It replaces a concat with a zero row and a gather, two outputs per layer and decode step.
 */
export function spreadRowsKernel(args: KernelArgs): tf.TensorInfo {
  const { x, spread } = args.inputs as { x: tf.TensorInfo; spread: tf.TensorInfo };
  const [rows, inner] = x.shape as [number, number];
  const count = spread.shape[0] as number;
  const backend = memoryOf(args.backend);
  const out = backend.makeOutput([count, inner], 'float32');
  const from = backend.typedArrayFromHeap(x) as Float32Array;
  const ids = backend.typedArrayFromHeap(spread) as Int32Array;
  const to = backend.typedArrayFromHeap(out) as Float32Array;
  for (let i = 0; i < count; i++) {
    const row = ids[i] as number;
    if (row === rows) to.fill(0, i * inner, (i + 1) * inner);
    else if (row >= 0 && row < rows) to.set(from.subarray(row * inner, (row + 1) * inner), i * inner);
    else throw new Error(`spread index ${row} (position ${i}) is outside [0, ${rows}]`);
  }
  return out;
}
