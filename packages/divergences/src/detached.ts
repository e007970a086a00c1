import * as tf from '@tensorflow/tfjs-core';

/** `x`'s values with no gradient to `x` (a stop-gradient): what a loss treats as a constant. */
export function detached<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(x) as T;
}
