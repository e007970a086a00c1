import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

function rowsOf(kernel: string, x: tf.TensorInfo, weight: tf.TensorInfo): { rows: number; width: number } {
  const width = x.shape[x.shape.length - 1] ?? 0;
  if (width === 0 || size(weight.shape) !== width)
    throw new Error(`${kernel}: weight of shape [${weight.shape.join(', ')}] does not match x of shape [${x.shape.join(', ')}]`);
  return { rows: size(x.shape) / width, width };
}

/** SkdRmsNorm: { x, weight }, { epsilon, offset } → [y, rstd]. */
export function rmsNormKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { x, weight } = args.inputs as Record<string, tf.TensorInfo>;
    const { epsilon, offset } = args.attrs as { epsilon: number; offset: number };
    requireFloat32('SkdRmsNorm', { x, weight });
    const { rows, width } = rowsOf('SkdRmsNorm', x as tf.TensorInfo, weight as tf.TensorInfo);
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([...(x as tf.TensorInfo).shape], 'float32');
    const rstd = backend.makeOutput([rows], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.rmsNorm(v(x), v(weight), v(y), v(rstd), rows, width, epsilon, offset);
    return [y, rstd];
  };
}

/** SkdRmsNormGrad: { dy, x, weight, rstd }, { offset } → [dx, dweight]. */
export function rmsNormGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { dy, x, weight, rstd } = args.inputs as Record<string, tf.TensorInfo>;
    const { offset } = args.attrs as { offset: number };
    requireFloat32('SkdRmsNormGrad', { dy, x, weight, rstd });
    const { rows, width } = rowsOf('SkdRmsNormGrad', x as tf.TensorInfo, weight as tf.TensorInfo);
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([...(x as tf.TensorInfo).shape], 'float32');
    const dweight = backend.makeOutput([...(weight as tf.TensorInfo).shape], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.rmsNormGrad(v(dy), v(x), v(weight), v(rstd), v(dx), v(dweight), rows, width, offset);
    return [dx, dweight];
  };
}
