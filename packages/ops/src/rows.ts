import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/**
 * The rows of x (N, d) spread over M slots: slot i takes row spread[i], or zeros where spread[i] is N.
 * A decode runs its position-wise layers on its real slots only and spreads them back for the
 * attention, which addresses slots by (row, column); padding slots read zeros.
 * Kernel (KERNELS.spreadRows): inputs { x (N, d) float32, spread (M) int32 in [0, N] } → (M, d).
 * Under a gradient tape it is the composite form (a gather of x with a zero row appended), whose
 * gradient tfjs has.
 */
export function spreadRows(x: tf.Tensor2D, spread: tf.Tensor1D): tf.Tensor2D {
  if (spread.dtype !== 'int32') throw new SkdError(`spreadRows takes int32 row indices, got ${spread.dtype}`);
  if (x.dtype !== 'float32' || !hasKernel(KERNELS.spreadRows) || tf.engine().isTapeOn()) return spreadRowsComposite(x, spread);
  return runKernel<tf.Tensor2D>(KERNELS.spreadRows, { x, spread });
}

/** spreadRows from stock ops: a zero row appended to x, then gathered. */
export function spreadRowsComposite(x: tf.Tensor2D, spread: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => tf.gather(tf.concat([x, tf.zeros([1, x.shape[1]], x.dtype)]), spread) as tf.Tensor2D);
}
