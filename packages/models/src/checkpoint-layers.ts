import * as tf from '@tensorflow/tfjs-core';
import { gradientsWithin } from '@skd/ops';

/**
 * Gradient checkpointing of one block: `block(x)` runs untaped in the forward pass, keeping only its
 * input (and `keep`, the tensors it closes over, alive); the backward pass runs it again on a tape of
 * its own and takes the gradients of its input and its `params` from there. Activations of the block
 * are thus held only while its own gradient is computed, at the cost of a second forward.
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
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => gradientsWithin(() => block(saved[0] as tf.Tensor2D), [saved[0] as tf.Tensor, ...params], dy),
    };
  });
  return run(x, ...params) as tf.Tensor2D;
}
