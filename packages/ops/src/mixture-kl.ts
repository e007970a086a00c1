import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';
import { klToMixture, logRatioToMixture, softmaxBackward } from './log-space';
import { logSoftmax } from './log-softmax';

/**
 * A divergence to the mixture M = w P + (1 - w) Q of teacher P and student Q:
 * a KL(P || M) + b KL(Q || M). GKD's generalised JSD(beta) is { beta, beta, 1 - beta }; DistiLLM's
 * skew KL(alpha) is { alpha, 1, 0 } and its skew reverse KL(alpha) { 1 - alpha, 0, 1 }.
 */
export interface MixtureKl {
  /** w, the teacher's share of the mixture, in (0, 1). */
  readonly teacherWeight: number;
  /** a, the weight of KL(P || M). */
  readonly teacherTerm: number;
  /** b, the weight of KL(Q || M). */
  readonly studentTerm: number;
}

/**
 * A divergence to the teacher-student mixture per position, from the teacher's log-probabilities
 * and the student's logits: (..., V) each → (...). The gradient flows to the logits only (the
 * teacher is frozen), in closed form: q (g - sum q g) with g = -(1 - w)(a p + b q) / m + b log(q / m),
 * so backprop keeps just the two inputs.
 *
 * Kernel `SkdMixtureKl`: inputs { logP, logits } → [loss, lse]; `SkdMixtureKlGrad`: inputs
 * { dy, logP, logits, lse } → dlogits; both take the MixtureKl as attrs. Without them the same value
 * and gradient come from stock ops in log space (log-space.ts).
 */
export function mixtureKlFromLogits(logP: tf.Tensor, logits: tf.Tensor, mixture: MixtureKl): tf.Tensor {
  if (logP.shape.join() !== logits.shape.join())
    throw new ShapeError('teacher log-probs', `[${logits.shape.join(', ')}] (like the student logits)`, logP.shape);
  const w = mixture.teacherWeight;
  if (!(w > 0 && w < 1)) throw new SkdError(`mixture teacher weight must be in (0, 1), got ${w}`);
  const attrs = { ...mixture };
  const native = hasKernel(KERNELS.mixtureKl) && logP.dtype === 'float32' && logits.dtype === 'float32' && logits.rank >= 1;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    if (native) {
      const [loss, lse] = runKernel<tf.Tensor[]>(KERNELS.mixtureKl, { logP, logits: x }, attrs) as [tf.Tensor, tf.Tensor];
      save([x, logP, lse]);
      return {
        value: loss,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sP, sLse] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          return runKernel<tf.Tensor>(KERNELS.mixtureKlGrad, { dy, logP: sP, logits: sx, lse: sLse }, attrs);
        },
      };
    }
    save([x, logP]);
    return {
      value: tf.tidy(() => compositeValue(logP, logSoftmax(x), mixture)), // (...)
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sP] = saved as [tf.Tensor, tf.Tensor];
        return tf.tidy(() => tf.mul(tf.expandDims(dy, -1), compositeGrad(sP, logSoftmax(sx), mixture))); // (..., V)
      },
    };
  });
  return op(logits);
}

function compositeValue(logP: tf.Tensor, logQ: tf.Tensor, { teacherWeight: w, teacherTerm: a, studentTerm: b }: MixtureKl): tf.Tensor {
  const terms: tf.Tensor[] = [];
  if (a !== 0) terms.push(tf.mul(a, klToMixture(logP, logQ, w)));
  if (b !== 0) terms.push(tf.mul(b, klToMixture(logQ, logP, 1 - w)));
  return terms.length === 0
    ? tf.zeros(logP.shape.slice(0, -1))
    : terms.length === 1
      ? (terms[0] as tf.Tensor)
      : tf.add(terms[0] as tf.Tensor, terms[1] as tf.Tensor);
}

function compositeGrad(logP: tf.Tensor, logQ: tf.Tensor, { teacherWeight: w, teacherTerm: a, studentTerm: b }: MixtureKl): tf.Tensor {
  // p / m is 0 where P has no mass (logRatioToMixture reads 0 there, not -inf).
  const pOverM = tf.where(tf.isFinite(logP), tf.exp(logRatioToMixture(logP, logQ, w)), tf.zerosLike(logP));
  const logQOverM = logRatioToMixture(logQ, logP, 1 - w);
  const g = tf.add(tf.mul(-(1 - w), tf.add(tf.mul(a, pOverM), tf.mul(b, tf.exp(logQOverM)))), tf.mul(b, logQOverM));
  return softmaxBackward(logQ, g);
}
