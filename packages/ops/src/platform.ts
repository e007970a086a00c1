import * as tf from '@tensorflow/tfjs-core';
// What every package that computes with tensors needs, whichever is imported first:
// - gradients: tfjs-core's CommonJS build registers none, and its own registration module is
//   ES-module-only; the CommonJS bundle of tfjs-layers registers all of them into tfjs-core's
//   global registry (the smallest package that does: the tfjs umbrella pulls ~190 MB more);
// - a backend that always works: plain-JS `cpu` (priority 1). `@skd/backend` adds the faster ones
//   and selects the best; without it, computations still run.
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';

/**
 * Comparison and predicate kernels are piecewise constant: their gradient is zero. tfjs registers
 * none, so any mask derived from a differentiable tensor (e.g. "where the student has mass") aborts
 * backprop with "gradient function not found". Registering zero gradients makes such masks usable.
 */
const BINARY_PREDICATES = ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual'] as const;
const UNARY_PREDICATES = ['IsFinite', 'IsNan', 'IsInf'] as const;

export function registerPredicateGradients(): void {
  for (const kernelName of BINARY_PREDICATES) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as [tf.Tensor, tf.Tensor];
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
  for (const kernelName of UNARY_PREDICATES) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (_dy, saved) => {
        const [x] = saved as [tf.Tensor];
        return { x: () => tf.zerosLike(x) };
      },
    });
  }
}

registerPredicateGradients();
