import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';
import { klFromLogProbs, klToMixture } from './log-space';

/**
 * Divergences between a teacher distribution P and a student distribution Q, given as
 * log-probabilities over the last axis: (..., V) → (...). P = teacher, Q = student, always; the
 * argument order is never swapped (a common source of silently wrong KD losses).
 */
export type LogProbDivergence = (logP: tf.Tensor, logQ: tf.Tensor) => tf.Tensor;

/** KL(P || Q) = sum P (log P - log Q). Mass-covering: the student is pushed to cover the teacher. */
export const forwardKl: LogProbDivergence = (logP, logQ) => klFromLogProbs(logP, logQ);

/** KL(Q || P). Mode-seeking. */
export const reverseKl: LogProbDivergence = (logP, logQ) => klFromLogProbs(logQ, logP);

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
  return (logP, logQ) =>
    tf.tidy(() => tf.add(tf.mul(beta, klToMixture(logP, logQ, beta)), tf.mul(1 - beta, klToMixture(logQ, logP, 1 - beta))));
}

/** Total variation distance: 0.5 sum |P - Q|, in [0, 1]. */
export const totalVariation: LogProbDivergence = (logP, logQ) =>
  tf.tidy(() => tf.mul(0.5, tf.sum(tf.abs(tf.sub(tf.exp(logP), tf.exp(logQ))), -1)));

/** Skew KL (DistiLLM): KL(P || alpha P + (1 - alpha) Q). alpha 0 is forward KL exactly. */
export function skewKl(alpha: number): LogProbDivergence {
  checkSkew(alpha);
  if (alpha === 0) return forwardKl;
  return (logP, logQ) => klToMixture(logP, logQ, alpha);
}

/** Skew reverse KL (DistiLLM): KL(Q || (1 - alpha) P + alpha Q). alpha 0 is reverse KL exactly. */
export function skewReverseKl(alpha: number): LogProbDivergence {
  checkSkew(alpha);
  if (alpha === 0) return reverseKl;
  return (logP, logQ) => klToMixture(logQ, logP, alpha);
}
