import type * as tf from '@tensorflow/tfjs-core';
import type { AdamWStep } from '@skd/ops';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

/** SkdAdamW: { param, grad, m, v }, AdamWStep → [param, m, v] in one pass. */
export function adamWKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { param, grad, m, v } = args.inputs as Record<string, tf.TensorInfo>;
    const s = args.attrs as unknown as AdamWStep;
    requireFloat32('SkdAdamW', { param, grad, m, v });
    const shape = [...(param as tf.TensorInfo).shape];
    for (const [name, t] of Object.entries({ grad, m, v })) {
      if ((t as tf.TensorInfo).shape.join() !== shape.join())
        throw new Error(`SkdAdamW: ${name} of shape [${(t as tf.TensorInfo).shape.join(', ')}] differs from the parameter's [${shape.join(', ')}]`);
    }
    const backend = memoryOf(args.backend);
    const outs = [backend.makeOutput(shape, 'float32'), backend.makeOutput(shape, 'float32'), backend.makeOutput(shape, 'float32')];
    const x = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.adamw(
      x(param),
      x(grad),
      x(m),
      x(v),
      x(outs[0]),
      x(outs[1]),
      x(outs[2]),
      size(shape),
      s.learningRate,
      s.beta1,
      s.beta2,
      s.epsilon,
      s.weightDecay,
      s.correction1,
      s.correction2,
    );
    return outs;
  };
}
