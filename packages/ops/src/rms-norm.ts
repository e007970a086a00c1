import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/**
 * RMSNorm over the last axis: y = x / sqrt(mean(x^2) + epsilon) * (offset + weight), x (N, d),
 * weight (d). `offset` is 0 in Llama and Qwen2, 1 in Gemma (which stores the scale minus one).
 *
 * Kernel `SkdRmsNorm`: inputs { x, weight }, attrs { epsilon, offset } → [y, rstd (N)];
 * `SkdRmsNormGrad`: inputs { dy, x, weight, rstd }, attrs { offset } → [dx, dweight].
 */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, epsilon: number, offset = 0): tf.Tensor2D {
  if (weight.shape[0] !== x.shape[1]) throw new ShapeError('rmsNorm weight', `(${x.shape[1]})`, weight.shape);
  if (!hasKernel(KERNELS.rmsNorm)) return rmsNormComposite(x, weight, epsilon, offset);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, w, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const [y, rstd] = runKernel<tf.Tensor[]>(KERNELS.rmsNorm, { x: xs, weight: w }, { epsilon, offset }) as [tf.Tensor2D, tf.Tensor1D];
    save([xs, w, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, sRstd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return runKernel<tf.Tensor[]>(KERNELS.rmsNormGrad, { dy, x: sx, weight: sw, rstd: sRstd }, { offset });
      },
    };
  });
  return op(x, weight) as tf.Tensor2D;
}

/** The composite form (any backend; its gradient comes from tfjs's autodiff). */
export function rmsNormComposite(x: tf.Tensor2D, weight: tf.Tensor1D, epsilon: number, offset = 0): tf.Tensor2D {
  return tf.tidy(() => {
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), epsilon)); // (N, 1)
    const scale = offset === 0 ? weight : tf.add(weight, offset); // (d)
    return tf.mul(tf.mul(x, rstd), scale) as tf.Tensor2D; // (N, d)
  });
}
