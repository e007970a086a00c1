import * as tf from '@tensorflow/tfjs-core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/**
 * LayerNorm over the last axis: x (N, d), gamma (d), beta (d) → (N, d).
 *
 * Kernel `SkdLayerNorm`: inputs { x, gamma, beta }, attrs { epsilon } → [y, mean (N), rstd (N)];
 * `SkdLayerNormGrad`: inputs { dy, x, gamma, mean, rstd } → [dx, dgamma, dbeta].
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor2D {
  if (!hasKernel(KERNELS.layerNorm)) return layerNormComposite(x, gamma, beta, epsilon);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const [y, mean, rstd] = runKernel<tf.Tensor[]>(KERNELS.layerNorm, { x: xs, gamma: g, beta: b }, { epsilon }) as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    save([xs, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sMean, sRstd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return runKernel<tf.Tensor[]>(KERNELS.layerNormGrad, { dy, x: sx, gamma: sg, mean: sMean, rstd: sRstd });
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** The composite form (any backend; its gradient comes from tfjs's autodiff). */
export function layerNormComposite(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // (N, 1) each
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))); // (N, d)
    return tf.add(tf.mul(normed, gamma), beta) as tf.Tensor2D; // (N, d)
  });
}
