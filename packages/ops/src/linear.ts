import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/**
 * A dense layer and, optionally, the residual connection around it: x (N, in) @ w (in, out)
 * + bias (out) + residual (N, out) → (N, out). One kernel forward and one backward where
 * registered; its stock composite form is a fused matmul and an add.
 *
 * Kernel `SkdLinear`: inputs { x, w, bias?, residual? } → out; `SkdLinearGrad`: inputs { dy, x, w },
 * attrs { bias: boolean } → [dx, dw, dbias?] (the residual's gradient is dy itself).
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, residual?: tf.Tensor2D): tf.Tensor2D {
  const [N, nIn] = x.shape;
  const nOut = w.shape[1];
  if (w.shape[0] !== nIn || (bias && bias.shape[0] !== nOut) || (residual && (residual.shape[0] !== N || residual.shape[1] !== nOut))) {
    throw new ShapeError('linear', `x (N, in), w (in, out), bias (out), residual (N, out) with x [${x.shape.join(', ')}]`, `w [${w.shape.join(', ')}]`);
  }
  if (!hasKernel(KERNELS.linear)) return linearComposite(x, w, bias, residual);
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[inputs.length] as tf.GradSaveFunc;
    const [xs, ws] = args as [tf.Tensor2D, tf.Tensor2D];
    const b = bias ? (args[2] as tf.Tensor1D) : undefined;
    const r = residual ? (args[bias ? 3 : 2] as tf.Tensor2D) : undefined;
    save([xs, ws]);
    return {
      value: runKernel<tf.Tensor2D>(KERNELS.linear, { x: xs, w: ws, ...(b ? { bias: b } : {}), ...(r ? { residual: r } : {}) }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor, tf.Tensor];
        const grads = runKernel<tf.Tensor[]>(KERNELS.linearGrad, { dy, x: sx, w: sw }, { bias: bias !== undefined });
        return residual ? [...grads, dy] : grads;
      },
    };
  });
  return op(...inputs) as tf.Tensor2D;
}

/** The composite form (any backend). */
export function linearComposite(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, residual?: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy((): tf.Tensor2D => {
    const y: tf.Tensor2D = bias ? (tf.fused.matMul({ a: x, b: w, bias }) as tf.Tensor2D) : tf.matMul(x, w); // (N, out)
    return residual ? tf.add(residual, y) : y;
  });
}

/**
 * `linear` with a frozen weight and bias (a LoRA student's base layers, a teacher): the same forward,
 * and a backward that computes only the input's gradient, dy wᵀ (and the residual's, dy), never the
 * weight's x^T dy, which would cost as much again and be thrown away.
 */
export function linearFrozen(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, residual?: tf.Tensor2D): tf.Tensor2D {
  if (!hasKernel(KERNELS.linear)) return linearComposite(x, w, bias, residual); // autodiff skips inputs off the path
  const [N, nIn] = x.shape;
  const nOut = w.shape[1];
  if (w.shape[0] !== nIn || (bias && bias.shape[0] !== nOut) || (residual && (residual.shape[0] !== N || residual.shape[1] !== nOut))) {
    throw new ShapeError('linearFrozen', `x (N, in), w (in, out), bias (out), residual (N, out) with x [${x.shape.join(', ')}]`, `w [${w.shape.join(', ')}]`);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args[0] as tf.Tensor2D;
    const r = residual ? (args[1] as tf.Tensor2D) : undefined;
    return {
      value: runKernel<tf.Tensor2D>(KERNELS.linear, { x: xs, w, ...(bias ? { bias } : {}), ...(r ? { residual: r } : {}) }),
      gradFunc: (dy: tf.Tensor) => {
        const dx = tf.matMul(dy as tf.Tensor2D, w, false, true); // (N, in)
        return residual ? [dx, dy] : [dx];
      },
    };
  });
  return op(...(residual ? [x, residual] : [x])) as tf.Tensor2D;
}
