import * as tf from '@tensorflow/tfjs-core';

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
