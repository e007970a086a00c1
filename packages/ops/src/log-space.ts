import * as tf from '@tensorflow/tfjs-core';

// Log-space helpers of the divergences to a mixture, shared by the fused op's composite form
// (mixture-kl.ts) and the closed-form divergences of @skd/divergences.

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
    const terms = tf.where(hasMass, tf.mul(a, logRatioToMixture(la, lb, w)), tf.zerosLike(la));
    return tf.relu(tf.sum(terms, -1));
  });
}

/** log A - log M elementwise, M = w A + (1 - w) B, in the exact and overflow-free form above. */
export function logRatioToMixture(la: tf.Tensor, lb: tf.Tensor, w: number): tf.Tensor {
  return tf.tidy(() => {
    const hasMass = tf.isFinite(la);
    const d = tf.where(hasMass, tf.sub(lb, la), tf.zerosLike(la)); // (..., V); -inf where B has no mass
    const small = tf.neg(tf.log1p(tf.mul(1 - w, tf.expm1(tf.minimum(d, SWITCH)))));
    const dLarge = tf.maximum(d, SWITCH);
    const large = tf.neg(tf.add(tf.add(dLarge, Math.log1p(-w)), tf.log1p(tf.mul(w / (1 - w), tf.exp(tf.neg(dLarge))))));
    return tf.where(tf.greater(d, SWITCH), large, small);
  });
}

/**
 * Gradient with respect to the logits of Q = softmax(s) of a function of Q, from g = df/dq:
 * q * (g - sum q g). Positions where Q has no mass get 0 (their g may be infinite).
 */
export function softmaxBackward(logQ: tf.Tensor, g: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const q = tf.exp(logQ);
    const hasMass = tf.greater(q, 0);
    const qg = tf.where(hasMass, tf.mul(q, g), tf.zerosLike(q)); // (..., V)
    return tf.where(hasMass, tf.sub(qg, tf.mul(q, tf.sum(qg, -1, true))), tf.zerosLike(q));
  });
}
