import type * as tf from '@tensorflow/tfjs-core';
import { type KernelArgs } from './wasm';

/**
 * Identity by reference: the engine clones every tensor it saves for backprop, and stock wasm copies
 * the bytes each time (7% of a training step). wasm kernels never write into an existing buffer, so
 * sharing the data with a reference count is safe, as the cpu backend does.
 */
export function identityKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  (args.backend as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}
