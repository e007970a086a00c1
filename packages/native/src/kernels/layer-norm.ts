import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

function rowsOf(kernel: string, x: tf.TensorInfo, gamma: tf.TensorInfo): { rows: number; width: number } {
  const width = x.shape[x.shape.length - 1] ?? 0;
  if (width === 0 || size(gamma.shape) !== width)
    throw new Error(`${kernel}: gamma of shape [${gamma.shape.join(', ')}] does not match x of shape [${x.shape.join(', ')}]`);
  return { rows: size(x.shape) / width, width };
}

/** SkdLayerNorm: { x, gamma, beta }, { epsilon } → [y, mean, rstd]. */
export function layerNormKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { x, gamma, beta } = args.inputs as Record<string, tf.TensorInfo>;
    const { epsilon } = args.attrs as { epsilon: number };
    requireFloat32('SkdLayerNorm', { x, gamma, beta });
    const { rows, width } = rowsOf('SkdLayerNorm', x as tf.TensorInfo, gamma as tf.TensorInfo);
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([...(x as tf.TensorInfo).shape], 'float32');
    const mean = backend.makeOutput([rows], 'float32');
    const rstd = backend.makeOutput([rows], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.layerNorm(v(x), v(gamma), v(beta), v(y), v(mean), v(rstd), rows, width, epsilon);
    return [y, mean, rstd];
  };
}

/** SkdLayerNormGrad: { dy, x, gamma, mean, rstd } → [dx, dgamma, dbeta]. */
export function layerNormGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { dy, x, gamma, mean, rstd } = args.inputs as Record<string, tf.TensorInfo>;
    requireFloat32('SkdLayerNormGrad', { dy, x, gamma, mean, rstd });
    const { rows, width } = rowsOf('SkdLayerNormGrad', x as tf.TensorInfo, gamma as tf.TensorInfo);
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([...(x as tf.TensorInfo).shape], 'float32');
    const dgamma = backend.makeOutput([...(gamma as tf.TensorInfo).shape], 'float32');
    const dbeta = backend.makeOutput([...(gamma as tf.TensorInfo).shape], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.layerNormGrad(v(dy), v(x), v(gamma), v(mean), v(rstd), v(dx), v(dgamma), v(dbeta), rows, width);
    return [dx, dgamma, dbeta];
  };
}
