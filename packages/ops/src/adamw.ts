import * as tf from '@tensorflow/tfjs-core';
import { hasKernel, KERNELS, runKernel } from './kernels';

export interface AdamWStep {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Decoupled weight decay applied to this tensor (0 for biases and gains). */
  readonly weightDecay: number;
  /** Bias corrections 1 - beta1^t and 1 - beta2^t. */
  readonly correction1: number;
  readonly correction2: number;
}

/**
 * One AdamW update of a parameter: m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
 * p' = p (1 - lr decay) - lr (m' / c1) / (sqrt(v' / c2) + eps). Returns new tensors [p', m', v'].
 * With `inPlace` (an optimizer that drops its old values right after), a kernel may write them over
 * the storage of `param`, `m` and `v` where no other tensor shares it, and return tensors on that
 * storage: the inputs then hold the new values too. Dispose the inputs as usual either way.
 *
 * Kernel `SkdAdamW`: inputs { param, grad, m, v }, attrs AdamWStep and inPlace → [param, m, v].
 */
export function adamWUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
  options: { readonly inPlace?: boolean } = {},
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (hasKernel(KERNELS.adamW) && [param, grad, m, v].every((t) => t.dtype === 'float32')) {
    return runKernel<tf.Tensor[]>(KERNELS.adamW, { param, grad, m, v }, { ...step, inPlace: options.inPlace === true }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  }
  return tf.tidy(() => {
    const { learningRate: lr, beta1, beta2, epsilon, weightDecay, correction1, correction2 } = step;
    const m1 = tf.add(tf.mul(beta1, m), tf.mul(1 - beta1, grad));
    const v1 = tf.add(tf.mul(beta2, v), tf.mul(1 - beta2, tf.square(grad)));
    const decayed = weightDecay > 0 ? tf.mul(param, 1 - lr * weightDecay) : param;
    const update = tf.div(tf.div(m1, correction1), tf.add(tf.sqrt(tf.div(v1, correction2)), epsilon));
    return [tf.sub(decayed, tf.mul(lr, update)), m1, v1] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}
