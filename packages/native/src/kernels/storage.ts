import * as tf from '@tensorflow/tfjs-core';
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
    addon.addSame(
      memory.typedArrayFromHeap(a) as Float32Array,
      memory.typedArrayFromHeap(b) as Float32Array,
      memory.typedArrayFromHeap(out) as Float32Array,
      size(a.shape),
    );
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
    addon.transposeLast2(
      memory.typedArrayFromHeap(x) as Float32Array,
      memory.typedArrayFromHeap(out) as Float32Array,
      size(x.shape.slice(0, rank - 2)),
      rows,
      cols,
    );
    return out;
  };
}

/**
 * Slice of a float32 or int32 tensor as copies of its contiguous runs (tfjs-backend-cpu walks a
 * generic index buffer element by element: slicing the logits of a padded vocabulary, 12 x 151,936
 * floats, took a second).
 */
export function sliceKernel(fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { begin, size: sizes } = args.attrs as { begin: number[]; size: number[] };
    const rank = x.shape.length;
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || rank === 0 || begin.length !== rank) return fallback(args);
    const outShape = x.shape.map((d, i) => (sizes[i] === -1 ? d - (begin[i] as number) : (sizes[i] as number)));
    const memory = memoryOf(args.backend);
    const out = memory.makeOutput(outShape, x.dtype);
    const src = memory.typedArrayFromHeap(x);
    const dst = memory.typedArrayFromHeap(out);
    // The innermost axes copied whole form one run; the outer axes are walked.
    let inner = rank - 1;
    while (inner > 0 && outShape[inner] === x.shape[inner]) inner--;
    const run = outShape.slice(inner).reduce((a, b) => a * b, 1);
    const strides = x.shape.map((_, i) => x.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const outer = outShape.slice(0, inner);
    const count = outer.reduce((a, b) => a * b, 1);
    const index = new Array<number>(inner).fill(0);
    for (let n = 0; n < count; n++) {
      let at = (begin[inner] as number) * (strides[inner] as number);
      for (let i = 0; i < inner; i++) at += ((begin[i] as number) + (index[i] as number)) * (strides[i] as number);
      dst.set(src.subarray(at, at + run), n * run);
      for (let i = inner - 1; i >= 0; i--) {
        index[i] = (index[i] as number) + 1;
        if ((index[i] as number) < (outer[i] as number)) break;
        index[i] = 0;
      }
    }
    return out;
  };
}

/**
 * SplitV as slices through `slice` (sliceKernel): tfjs-backend-cpu splits with its own element-wise
 * slice, so a column split is a walk over every element by index arithmetic. Qwen3's query/key norms
 * split the packed q|k|v projection by columns (1,024 x 4,096 floats in a training step), and the
 * backward pass of every concatenation splits again: 6.5 s a call before this kernel.
 */
export function splitVKernel(slice: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const along = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, along);
    const begin = x.shape.map(() => 0);
    return sizes.map((width) => {
      const size = x.shape.map((d, i) => (i === along ? width : d));
      const piece = slice({ ...args, inputs: { x }, attrs: { begin: [...begin], size } }) as tf.TensorInfo;
      begin[along] = (begin[along] as number) + width;
      return piece;
    });
  };
}

/**
 * Fill of float32 or int32 into a pooled output (other dtypes are stock). The KV cache's buffers are
 * fills: tf.zeros makes its array outside any kernel, so no backend could reuse the memory.
 */
export function fillKernel(fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { shape, value, dtype } = args.attrs as { shape: number[]; value: number | string; dtype: tf.DataType };
    if ((dtype !== 'float32' && dtype !== 'int32') || typeof value !== 'number') return fallback(args);
    const memory = memoryOf(args.backend);
    const out = memory.makeOutput([...shape], dtype);
    memory.typedArrayFromHeap(out).fill(value);
    return out;
  };
}
