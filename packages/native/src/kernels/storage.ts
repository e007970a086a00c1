import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { size, type Fallback, type KernelArgs, memoryOf } from './wasm';

// Kernels the `native` backend needs because tfjs-backend-cpu runs them as generic JS loops over
// index arithmetic: in a 135M-parameter training step, adding the tied embedding's two gradients
// (49152 x 576) took 1.1 s and an identity-permutation Transpose of it 1.0 s. Other layouts fall back.

/** Add of two float32 tensors of one shape, natively; anything else (broadcasting, other dtypes) is stock. */
export function addKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.join() !== b.shape.join() || size(a.shape) < 4096) return fallback(args);
    const memory = memoryOf(args.backend);
    const out = memory.makeOutput([...a.shape], 'float32');
    addon.addSame(memory.typedArrayFromHeap(a) as Float32Array, memory.typedArrayFromHeap(b) as Float32Array, memory.typedArrayFromHeap(out) as Float32Array, size(a.shape));
    return out;
  };
}

/** Transpose: an identity permutation shares the data; swapping the last two axes is one native pass; anything else is stock. */
export function transposeKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    const rank = x.shape.length;
    if (perm.every((p, i) => p === i)) {
      (args.backend as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    const swapsLast2 = rank >= 2 && perm.every((p, i) => (i < rank - 2 ? p === i : p === (i === rank - 2 ? rank - 1 : rank - 2)));
    if (x.dtype !== 'float32' || !swapsLast2 || size(x.shape) < 4096) return fallback(args);
    const rows = x.shape[rank - 2] as number;
    const cols = x.shape[rank - 1] as number;
    const memory = memoryOf(args.backend);
    const out = memory.makeOutput([...x.shape.slice(0, rank - 2), cols, rows], 'float32');
    addon.transposeLast2(memory.typedArrayFromHeap(x) as Float32Array, memory.typedArrayFromHeap(out) as Float32Array, size(x.shape.slice(0, rank - 2)), rows, cols);
    return out;
  };
}
