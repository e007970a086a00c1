import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';
import { forwardKlFromLogits, klFromLogProbs, mixtureKlFromLogits, type MixtureKl } from '@skd/ops';
import { klToMixture, softmaxBackward } from './log-space';

/**
 * A divergence between a teacher distribution P and a student distribution Q, given as
 * log-probabilities over the last axis: (..., V) → (...). P = teacher, Q = student, always; the
 * argument order is never swapped (a common source of silently wrong KD losses).
 *
 * `studentGrad`, when present, is the closed-form gradient with respect to the student's logits
 * (per unit upstream gradient, (..., V)). With it, a full-vocabulary loss keeps only its inputs for
 * backprop instead of every intermediate: at (4, 128, 32000) autodiff held dozens of 64 MB tensors
 * and exhausted the wasm heap.
 */
export type LogProbDivergence = ((logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor) & {
  readonly studentGrad?: (logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor;
  /** The same divergence from the student's logits in one fused op (value and gradient), where one exists. */
  readonly fromLogits?: (logP: tf.Tensor, logits: tf.Tensor) => tf.Tensor;
};

function withGrad(value: (logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor, studentGrad: (logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor): LogProbDivergence {
  return Object.assign(value, { studentGrad });
}

/** KL(P || Q) = sum P (log P - log Q). Mass-covering. Gradient in the student logits: Q - P. */
export const forwardKl: LogProbDivergence = Object.assign(
  withGrad(
    (logP, logQ) => klFromLogProbs(logP, logQ),
    (logP, logQ) => tf.tidy(() => tf.sub(tf.exp(logQ), tf.exp(logP))),
  ),
  { fromLogits: forwardKlFromLogits },
);

/** KL(Q || P). Mode-seeking. df/dq = log q - log p (+1, which the softmax Jacobian cancels). */
export const reverseKl: LogProbDivergence = withGrad(
  (logP, logQ) => klFromLogProbs(logQ, logP),
  (logP, logQ) => tf.tidy(() => softmaxBackward(logQ, tf.sub(logQ, logP))),
);

/**
 * A divergence to the teacher-student mixture: its value from log-probabilities, and `fromLogits`, the
 * fused op whose closed-form gradient (native where registered, stock ops elsewhere) training uses.
 */
function mixtureDivergence(value: (logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor, mixture: MixtureKl): LogProbDivergence {
  return Object.assign(value, { fromLogits: (logP: tf.Tensor, logits: tf.Tensor) => mixtureKlFromLogits(logP, logits, mixture) });
}

function checkUnit(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) throw new SkdError(`${name} must be in [0, 1], got ${value}`);
}

function checkSkew(value: number): void {
  if (!(value >= 0 && value < 1)) {
    throw new SkdError(`skew alpha must be in [0, 1) (alpha 1 makes the divergence identically 0), got ${value}`);
  }
}

/**
 * Generalised JSD (GKD): beta KL(P || M) + (1 - beta) KL(Q || M), M = beta P + (1 - beta) Q, with
 * log M computed in log space. The interior formula tends to 0 at both ends, so the endpoints are
 * defined as the KLs they stand for: beta 0 is forward KL, beta 1 reverse KL, exactly.
 */
export function generalizedJsd(beta: number): LogProbDivergence {
  checkUnit('jsd beta', beta);
  if (beta === 0) return forwardKl;
  if (beta === 1) return reverseKl;
  // M = beta P + (1 - beta) Q = (1 - beta) Q + beta P, so each KL is a KL to a mixture with its own input.
  return mixtureDivergence(
    (logP, logQ) => tf.tidy(() => tf.add(tf.mul(beta, klToMixture(logP, logQ, beta)), tf.mul(1 - beta, klToMixture(logQ, logP, 1 - beta)))),
    { teacherWeight: beta, teacherTerm: beta, studentTerm: 1 - beta },
  );
}

/** Total variation distance: 0.5 sum |P - Q|, in [0, 1]. df/dq = 0.5 sign(q - p). */
export const totalVariation: LogProbDivergence = withGrad(
  (logP, logQ) => tf.tidy(() => tf.mul(0.5, tf.sum(tf.abs(tf.sub(tf.exp(logP), tf.exp(logQ))), -1))),
  (logP, logQ) => tf.tidy(() => softmaxBackward(logQ, tf.mul(0.5, tf.sign(tf.sub(tf.exp(logQ), tf.exp(logP)))))),
);

/** Skew KL (DistiLLM): KL(P || alpha P + (1 - alpha) Q). alpha 0 is forward KL exactly. */
export function skewKl(alpha: number): LogProbDivergence {
  checkSkew(alpha);
  if (alpha === 0) return forwardKl;
  // M = alpha P + (1 - alpha) Q.
  return mixtureDivergence((logP, logQ) => klToMixture(logP, logQ, alpha), { teacherWeight: alpha, teacherTerm: 1, studentTerm: 0 });
}

/** Skew reverse KL (DistiLLM): KL(Q || (1 - alpha) P + alpha Q). alpha 0 is reverse KL exactly. */
export function skewReverseKl(alpha: number): LogProbDivergence {
  checkSkew(alpha);
  if (alpha === 0) return reverseKl;
  // M = (1 - alpha) P + alpha Q.
  return mixtureDivergence((logP, logQ) => klToMixture(logQ, logP, alpha), { teacherWeight: 1 - alpha, teacherTerm: 0, studentTerm: 1 });
}
