import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { size, type Fallback, type KernelArgs, memoryOf } from './wasm';

/**
 * Sum over a contiguous run of axes as (outer, reduce, inner) → (outer, inner) natively. tfjs-wasm
 * transposes the reduced axes to the end first, which made bias and LayerNorm gradients (sums over
 * the leading axes) a fifth of a training step. Other layouts and dtypes use the stock kernel.
 */
export function sumKernel(addon: NativeAddon, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[] | null; keepDims: boolean };
    const rank = x.shape.length;
    const axes = [
      ...new Set((axis === null || axis === undefined ? x.shape.map((_, i) => i) : Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a))),
    ].sort((a, b) => a - b);
    const first = axes[0];
    const last = axes[axes.length - 1];
    if (x.dtype !== 'float32' || first === undefined || last === undefined || last - first + 1 !== axes.length) return fallback(args);
    const backend = memoryOf(args.backend);
    const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    addon.sumMiddle(
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      size(x.shape.slice(0, first)),
      size(x.shape.slice(first, last + 1)),
      size(x.shape.slice(last + 1)),
    );
    return out;
  };
}
