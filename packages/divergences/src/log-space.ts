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

/** Beyond this log-ratio the overflow-free branch of `klToMixture` is used. */
const SWITCH = 10;

/**
 * KL(A || w A + (1 - w) B) for w in (0, 1), from log-probabilities over the last axis.
 *
 * Written relative to A: log A - log M = -log(w + (1 - w) exp(lb - la)) = -log1p((1 - w) expm1(d)),
 * d = lb - la. Identical inputs give d = 0 and exactly 0 (a logsumexp of the mixture leaves 1-ulp
 * noise), and d = -inf (B has no mass there) stays finite. For large d the algebraically equal form
 * -(log(1 - w) + d + log1p(w / (1 - w) exp(-d))) avoids overflow. Each branch sees its input clamped
 * to its own range, so the branch not taken cannot put NaN into the gradient.
 */
export function klToMixture(la: tf.Tensor, lb: tf.Tensor, w: number): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.exp(la);
    const hasMass = tf.greater(a, 0);
    const d = tf.where(hasMass, tf.sub(lb, la), tf.zerosLike(la)); // (..., V); -inf where B has no mass
    const small = tf.neg(tf.log1p(tf.mul(1 - w, tf.expm1(tf.minimum(d, SWITCH)))));
    const dLarge = tf.maximum(d, SWITCH);
    const large = tf.neg(tf.add(tf.add(dLarge, Math.log1p(-w)), tf.log1p(tf.mul(w / (1 - w), tf.exp(tf.neg(dLarge))))));
    const logRatio = tf.where(tf.greater(d, SWITCH), large, small); // log A - log M
    const terms = tf.where(hasMass, tf.mul(a, logRatio), tf.zerosLike(la));
    return tf.relu(tf.sum(terms, -1));
  });
}
