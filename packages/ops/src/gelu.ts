import * as tf from '@tensorflow/tfjs-core';
import { hasKernel, KERNELS, runKernel } from './kernels';

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 *
 * Kernel `SkdGelu`: inputs { x } → y; `SkdGeluGrad`: inputs { dy, x } → dx.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (!hasKernel(KERNELS.gelu)) return geluComposite(x);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([xs]);
    return {
      value: runKernel<tf.Tensor>(KERNELS.gelu, { x: xs }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel<tf.Tensor>(KERNELS.geluGrad, { dy, x: saved[0] as tf.Tensor }),
    };
  });
  return op(x) as T;
}

/** The composite form (any backend). */
export function geluComposite<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    const inner = tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner))) as T;
  });
}
