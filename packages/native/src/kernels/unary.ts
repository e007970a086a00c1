import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { size, type Fallback, type KernelArgs, memoryOf } from './wasm';

/**
 * Tanh (op 0), Sigmoid (op 1) or Square (op 2), vectorised natively into a pooled output; the stock
 * kernels run a scalar loop into fresh memory (Square: the gradient clip's sum of squares, once per
 * parameter per step).
 */
export function unaryKernel(addon: NativeAddon, op: 0 | 1 | 2, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return fallback(args);
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([...x.shape], 'float32');
    addon.unary(op, backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array, size(x.shape));
    return out;
  };
}
