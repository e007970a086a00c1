import * as tf from '@tensorflow/tfjs-core';

/** The engine's tape slot, which a gradient computed inside another's backward pass must not clobber. */
interface TapeState {
  state: { activeTape: unknown };
}

/**
 * Gradient checkpointing of one block: `block(x)` runs untaped in the forward pass, keeping only its
 * input (and `keep`, the tensors it closes over, alive); the backward pass runs it again on a tape of
 * its own and takes the gradients of its input and its `params` from there. Activations of the block
 * are thus held only while its own gradient is computed, at the cost of a second forward.
 *
 * TensorFlow.js computes a gradient inside a gradient function by starting a fresh tape in the slot
 * of the one being walked (and clearing it after), so the outer tape is put back afterwards.
 */
export function checkpointed(
  block: (x: tf.Tensor2D) => tf.Tensor2D,
  x: tf.Tensor2D,
  params: readonly tf.Tensor[],
  keep: readonly tf.Tensor[] = [],
): tf.Tensor2D {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor2D;
    save([input, ...keep]);
    return {
      value: block(input),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const engine = tf.engine() as unknown as TapeState;
        const outer = engine.state.activeTape;
        try {
          // The block run again on the saved input, on a tape of its own: its input's and parameters' gradients.
          const { grads: all, value } = tf.engine().gradients(() => block(saved[0] as tf.Tensor2D), [saved[0] as tf.Tensor, ...params], dy, true);
          value.dispose();
          return all.map((g, i) => g ?? tf.zerosLike(i === 0 ? (saved[0] as tf.Tensor) : (params[i - 1] as tf.Tensor)));
        } finally {
          engine.state.activeTape = outer;
        }
      },
    };
  });
  return run(x, ...params) as tf.Tensor2D;
}
