import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

/** SkdGelu: { x } → y (tanh form). */
export function geluKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    requireFloat32('SkdGelu', { x });
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([...x.shape], 'float32');
    addon.gelu(f32(backend, x), f32(backend, y), size(x.shape));
    return y;
  };
}

/** SkdGeluGrad: { dy, x } → dx. */
export function geluGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    requireFloat32('SkdGeluGrad', { dy, x });
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([...x.shape], 'float32');
    addon.geluGrad(f32(backend, dy), f32(backend, x), f32(backend, dx), size(x.shape));
    return dx;
  };
}
