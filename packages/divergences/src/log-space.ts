import * as tf from '@tensorflow/tfjs-core';

/** log(exp(a) + exp(b)) elementwise, exact when both are -inf (gives -inf, not NaN). */
export function logAddExp(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const hi = tf.maximum(a, b);
    const lo = tf.minimum(a, b);
    const safeHi = tf.where(tf.isFinite(hi), hi, tf.zerosLike(hi));
    const sum = tf.add(hi, tf.log1p(tf.exp(tf.sub(lo, safeHi))));
    return tf.where(tf.isFinite(hi), sum, hi);
  });
}

/**
 * sum_v exp(la) * (la - lb) over the last axis: KL(A || B) from log-probabilities. Terms where A
 * has no mass are exactly 0 (so -inf logits, a masked vocabulary, stay finite), and the result is
 * clamped at 0 so identical inputs give exactly 0 rather than rounding noise below it.
 */
export function klFromLogProbs(la: tf.Tensor, lb: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.exp(la);
    const hasMass = tf.greater(a, 0);
    const safeDiff = tf.where(hasMass, tf.sub(la, lb), tf.zerosLike(la));
    const terms = tf.where(hasMass, tf.mul(a, safeDiff), tf.zerosLike(la));
    return tf.relu(tf.sum(terms, -1));
  });
}
