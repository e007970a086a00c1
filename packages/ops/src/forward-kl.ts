import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';
import { logSoftmax } from './log-softmax';

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

/**
 * Forward KL(P || softmax(logits)) per position, from the teacher's log-probabilities and the
 * student's logits: (..., V) each → (...). The gradient flows to the logits only (the teacher is
 * frozen): dy (softmax(logits) - P), in closed form, so backprop keeps just the two inputs.
 *
 * Kernel `SkdForwardKl`: inputs { logP, logits } → [loss, lse]; `SkdForwardKlGrad`: inputs
 * { dy, logP, logits, lse } → dlogits.
 */
export function forwardKlFromLogits(logP: tf.Tensor, logits: tf.Tensor): tf.Tensor {
  if (logP.shape.join() !== logits.shape.join())
    throw new ShapeError('teacher log-probs', `[${logits.shape.join(', ')}] (like the student logits)`, logP.shape);
  const native = hasKernel(KERNELS.forwardKl) && logP.dtype === 'float32' && logits.dtype === 'float32' && logits.rank >= 1;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    if (native) {
      const [loss, lse] = runKernel<tf.Tensor[]>(KERNELS.forwardKl, { logP, logits: x }) as [tf.Tensor, tf.Tensor];
      save([x, logP, lse]);
      return {
        value: loss,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sP, sLse] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          return runKernel<tf.Tensor>(KERNELS.forwardKlGrad, { dy, logP: sP, logits: sx, lse: sLse });
        },
      };
    }
    save([x, logP]);
    return {
      value: tf.tidy(() => klFromLogProbs(logP, logSoftmax(x))), // (...)
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sP] = saved as [tf.Tensor, tf.Tensor];
        return tf.tidy(() => tf.mul(tf.expandDims(dy, -1), tf.sub(tf.exp(logSoftmax(sx)), tf.exp(sP)))); // (..., V)
      },
    };
  });
  return op(logits);
}
