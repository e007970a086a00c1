import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, i32, requireFloat32, type KernelArgs, memoryOf } from './wasm';

/** SkdRotary: { x (N, (heads + 2 kvHeads) headDim), positions (N) int32, frequencies (headDim / 2) }, { heads, kvHeads, headDim, inverse } → y. */
export function rotaryKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, positions, frequencies } = args.inputs as Record<string, tf.TensorInfo>;
    const { heads, kvHeads, headDim, inverse } = args.attrs as { heads: number; kvHeads: number; headDim: number; inverse: boolean };
    requireFloat32('SkdRotary', { x, frequencies });
    const [rows, width] = (x as tf.TensorInfo).shape as [number, number];
    if (width !== (heads + 2 * kvHeads) * headDim || (positions as tf.TensorInfo).dtype !== 'int32') {
      throw new Error(`SkdRotary: x [${(x as tf.TensorInfo).shape.join(', ')}] is not (N, (${heads} + 2 * ${kvHeads}) * ${headDim}) with int32 positions`);
    }
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([rows, width], 'float32');
    addon.rotary(
      f32(backend, x as tf.TensorInfo),
      i32(backend, positions as tf.TensorInfo),
      f32(backend, frequencies as tf.TensorInfo),
      f32(backend, y),
      rows,
      heads,
      kvHeads,
      headDim,
      inverse,
    );
    return y;
  };
}
