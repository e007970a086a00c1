import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { type KernelArgs, memoryOf } from './wasm';

/**
 * UnsortedSegmentSum (the gradient of gather, so of every embedding), which tfjs-backend-wasm
 * lacks. Native when the addon is loaded, else a JS loop over the heap views.
 */
export function unsortedSegmentSumKernel(addon: NativeAddon | undefined) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const { numSegments } = args.attrs as { numSegments: number };
    const backend = memoryOf(args.backend);
    const rows = segmentIds.shape.reduce((p, q) => p * q, 1);
    const inner = rows === 0 ? 0 : x.shape.slice(segmentIds.shape.length).reduce((p, q) => p * q, 1);
    const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
    const xs = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
    const target = backend.typedArrayFromHeap(out);
    if (addon && x.dtype === 'float32') {
      addon.unsortedSegmentSum(xs as Float32Array, ids, target as Float32Array, rows, inner, numSegments);
      return out;
    }
    target.fill(0);
    for (let r = 0; r < rows; r++) {
      const s = ids[r] as number;
      if (s < 0 || s >= numSegments) continue;
      for (let j = 0; j < inner; j++) target[s * inner + j] = (target[s * inner + j] as number) + (xs[r * inner + j] as number);
    }
    return out;
  };
}
