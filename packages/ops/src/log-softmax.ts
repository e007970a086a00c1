import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/**
 * Log-softmax over the last axis, any rank: x - logsumexp(x). Every divergence starts here, over
 * (B, T, V) logits.
 *
 * Kernel `SkdLogSoftmax`: inputs { x } (rows, V) → y; `SkdLogSoftmaxGrad`: inputs { dy, y } → dx = dy - exp(y) sum(dy).
 */
export function logSoftmax<T extends tf.Tensor>(x: T): T {
  if (!hasKernel(KERNELS.logSoftmax) || x.dtype !== 'float32' || x.rank < 1) return tf.logSoftmax(x) as T;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const y = runKernel<tf.Tensor>(KERNELS.logSoftmax, { x: xs });
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel<tf.Tensor>(KERNELS.logSoftmaxGrad, { dy, y: saved[0] as tf.Tensor }) };
  });
  return op(x) as T;
}

/**
 * Next-token cross-entropy -log softmax(logits)[target] per position: logits (..., V), targets
 * (...) int32 → (...). Targets outside [0, V) are an error.
 *
 * Kernel `SkdCrossEntropy`: inputs { logits, targets } → [loss, lse]; `SkdCrossEntropyGrad`:
 * inputs { dy, logits, targets, lse } → dlogits = (softmax - onehot) dy.
 */
export function sparseCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.rank - 1] as number;
  if (logits.rank < 1 || targets.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new ShapeError('cross-entropy targets', `[${logits.shape.slice(0, -1).join(', ')}] (the logits without their last axis)`, targets.shape);
  }
  const ids = targets.dtype === 'int32' ? targets : tf.cast(targets, 'int32');
  try {
    if (!hasKernel(KERNELS.crossEntropy) || logits.dtype !== 'float32') return crossEntropyComposite(logits, ids, V);
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
      const [loss, lse] = runKernel<tf.Tensor[]>(KERNELS.crossEntropy, { logits: x, targets: ids }) as [tf.Tensor, tf.Tensor];
      save([x, ids, lse]);
      return {
        value: loss,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sIds, sLse] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          return runKernel<tf.Tensor>(KERNELS.crossEntropyGrad, { dy, logits: sx, targets: sIds, lse: sLse });
        },
      };
    });
    return op(logits);
  } finally {
    if (ids !== targets) ids.dispose();
  }
}

function crossEntropyComposite(logits: tf.Tensor, targets: tf.Tensor, V: number): tf.Tensor {
  return tf.tidy(() => {
    const logQ = tf.logSoftmax(logits); // (..., V)
    return tf.neg(tf.sum(tf.mul(logQ, tf.oneHot(targets, V)), -1)); // (...)
  });
}
