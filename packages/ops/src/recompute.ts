import * as tf from '@tensorflow/tfjs-core';

/** The engine's tape slot, which a gradient computed inside another's backward pass must not clobber. */
interface TapeState {
  state: { activeTape: unknown };
}

/**
 * Gradients of `f()` with respect to `xs`, weighted by `dy`, computed inside a custom gradient's
 * backward pass: what recomputation (checkpointed blocks, a loss taken a slice at a time) needs.
 * TensorFlow.js starts a gradient's tape in the slot of the one being walked and clears it after, so
 * the outer tape is put back. An input `f` does not reach gets zeros.
 */
export function gradientsWithin(f: () => tf.Tensor, xs: readonly tf.Tensor[], dy?: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as TapeState;
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = tf.engine().gradients(f, [...xs], dy, true);
    value.dispose();
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i] as tf.Tensor));
  } finally {
    engine.state.activeTape = outer;
  }
}
