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

/**
 * One block of a model's forward. Under a gradient tape it runs as usual, or checkpointed when
 * `checkpoint` gives its parameters and the tensors it closes over. With nothing to differentiate
 * (decoding, a teacher's pass, evaluation) it runs in a scope of its own that frees its
 * intermediates, and its input, as it ends: the next block's outputs then reuse those buffers
 * instead of touching fresh memory, and a forward holds one block's activations at a time.
 * `x` must be the forward's own tensor (it is disposed on that path).
 */
export function runBlock(
  block: (x: tf.Tensor2D) => tf.Tensor2D,
  x: tf.Tensor2D,
  checkpoint: { readonly params: readonly tf.Tensor[]; readonly keep: readonly tf.Tensor[] } | undefined,
): tf.Tensor2D {
  if (tf.engine().isTapeOn()) return checkpoint ? checkpointed(block, x, checkpoint.params, checkpoint.keep) : block(x);
  const y = tf.tidy(() => block(x));
  x.dispose();
  return y;
}
