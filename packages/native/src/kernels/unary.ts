import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { size, type Fallback, type KernelArgs, memoryOf } from './wasm';

/** Tanh (op 0) or Sigmoid (op 1), vectorised natively; the stock kernels run a scalar loop. */
export function unaryKernel(addon: NativeAddon, op: 0 | 1, fallback: Fallback) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return fallback(args);
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([...x.shape], 'float32');
    addon.unary(op, backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array, size(x.shape));
    return out;
  };
}
