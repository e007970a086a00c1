import type * as tf from '@tensorflow/tfjs-core';
import type { AdamWStep } from '@skd/ops';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

/** The parts of a backend that tell whether a tensor's storage is its alone. */
interface SharedStorage {
  refCount(dataId: tf.DataId): number;
  incRef(dataId: tf.DataId): void;
}

/**
 * SkdAdamW: { param, grad, m, v }, AdamWStep → [param, m, v] in one pass. With `inPlace`, when param,
 * m and v each have storage of their own (no other tensor shares it, and none is another input), the
 * update is written over them and they are returned: an optimizer step then never holds a second copy
 * of a parameter and its moments (1.6 GB at once for a 151,936 x 896 embedding).
 */
export function adamWKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { param, grad, m, v } = args.inputs as Record<string, tf.TensorInfo>;
    const s = args.attrs as unknown as AdamWStep & { inPlace?: boolean };
    requireFloat32('SkdAdamW', { param, grad, m, v });
    const shape = [...(param as tf.TensorInfo).shape];
    for (const [name, t] of Object.entries({ grad, m, v })) {
      if ((t as tf.TensorInfo).shape.join() !== shape.join())
        throw new Error(`SkdAdamW: ${name} of shape [${(t as tf.TensorInfo).shape.join(', ')}] differs from the parameter's [${shape.join(', ')}]`);
    }
    const backend = memoryOf(args.backend);
    const shared = args.backend as Partial<SharedStorage>;
    const own = (t: tf.TensorInfo | undefined) => typeof shared.refCount === 'function' && shared.refCount((t as tf.TensorInfo).dataId) === 1;
    const distinct = new Set([param, grad, m, v].map((t) => (t as tf.TensorInfo).dataId)).size === 4;
    const inPlace = s.inPlace === true && distinct && typeof shared.incRef === 'function' && own(param) && own(m) && own(v);
    const outs = inPlace
      ? [param, m, v].map((t) => {
          (shared as SharedStorage).incRef((t as tf.TensorInfo).dataId);
          return { dataId: (t as tf.TensorInfo).dataId, shape, dtype: 'float32' as const };
        })
      : [backend.makeOutput(shape, 'float32'), backend.makeOutput(shape, 'float32'), backend.makeOutput(shape, 'float32')];
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
