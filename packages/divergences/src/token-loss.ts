import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError, type Divergence } from '@skd/core';

export interface TokenLossInput {
  readonly divergence: Divergence;
  /** (B, T) int32 sequences, as the sampler produced them. */
  readonly tokens: tf.Tensor2D;
  /** (B, T) 1 where token t is a loss target (response tokens, EOS included). */
  readonly targetMask: tf.Tensor2D;
  /** (B, T, V) student logits over `tokens`. */
  readonly studentLogits: tf.Tensor3D;
  /** (B, T, V) teacher logits over `tokens`, or cached log-probs (same alignment). */
  readonly teacherLogits?: tf.Tensor3D;
  readonly teacherLogProbs?: tf.Tensor3D;
  /** Per-sequence weights (length B); default 1. They scale a row's terms, not the token count. */
  readonly sequenceWeights?: readonly number[];
  /**
   * Number of target tokens to divide by. With gradient accumulation pass the count of the whole
   * global batch, so micro-batches sum to the full-batch loss. Default: this batch's count.
   */
  readonly normalizer?: number;
  /**
   * tokens: sum over the targets / normalizer (each token counts once). sequences: each row's mean
   * over its own targets, summed and divided by `normalizer` rows (each sequence counts once, as the
   * SKD authors' code reduces); rows without targets add nothing. Default tokens.
   */
  readonly reduction?: 'tokens' | 'sequences';
}

/** Rows of a batch with at least one loss target: what a sequence-mean loss divides by. */
export function countTargetRows(targetMask: tf.Tensor2D): number {
  const count = tf.tidy(() => tf.sum(tf.cast(tf.greater(tf.sum(tf.slice(targetMask, [0, 1], [-1, -1]), 1), 0), 'float32')));
  const value = count.dataSync()[0] as number;
  count.dispose();
  return value;
}

/** Number of loss-target tokens in a batch (those with a preceding position to predict them). */
export function countTargets(targetMask: tf.Tensor2D): number {
  const count = tf.tidy(() => tf.sum(tf.slice(targetMask, [0, 1], [-1, -1])));
  const value = count.dataSync()[0] as number;
  count.dispose();
  return value;
}

/**
 * The one loss assembly every method uses. Logits at column t predict token t + 1, for teacher and
 * student alike: targets and the target mask are shifted one column left (the last column predicts
 * nothing and is masked), so the (B, T, V) logits are used in place, never sliced. Values at
 * non-target columns are replaced (not multiplied) by 0, so garbage there (padding, -inf) never
 * leaks in. Returns sum over targets / normalizer (or, with reduction sequences, the sum of the
 * rows' means / normalizer rows), and 0 when there is nothing to learn from (0/0 guarded).
 */
export function tokenLoss(input: TokenLossInput): tf.Scalar {
  const { tokens, targetMask, studentLogits } = input;
  const [B, T] = tokens.shape;
  if (studentLogits.shape[0] !== B || studentLogits.shape[1] !== T) {
    throw new ShapeError('student logits', `(${B}, ${T}, V) to match the tokens`, studentLogits.shape);
  }
  if (targetMask.shape[0] !== B || targetMask.shape[1] !== T) throw new ShapeError('target mask', `(${B}, ${T})`, targetMask.shape);
  if (input.sequenceWeights && input.sequenceWeights.length !== B) {
    throw new SkdError(`sequenceWeights must have one weight per row (${B}), got ${input.sequenceWeights.length}`);
  }
  if (input.normalizer !== undefined && !(input.normalizer >= 0)) {
    throw new SkdError(`normalizer must be >= 0, got ${input.normalizer}`);
  }
  return tf.tidy(() => {
    const targets = shiftLeft(tokens) as tf.Tensor2D; // (B, T): token t + 1 at column t
    const mask = shiftLeft(targetMask); // (B, T)
    const values = input.divergence.perToken({
      studentLogits,
      teacherLogits: input.teacherLogits,
      teacherLogProbs: input.teacherLogProbs,
      targets,
    }); // (B, T)
    const isTarget = tf.greater(mask, 0);
    let kept = tf.where(isTarget, values, tf.zerosLike(values)); // (B, T)
    if (input.sequenceWeights) kept = tf.mul(kept, tf.tensor2d(input.sequenceWeights as number[], [B, 1])); // (B, T)
    if (input.reduction === 'sequences') {
      const perRow = tf.sum(tf.cast(isTarget, 'float32'), 1); // (B,) targets per row
      const rowMeans = tf.div(tf.sum(kept, 1), tf.maximum(perRow, 1)); // (B,): a row without targets is 0
      const rows = input.normalizer !== undefined ? tf.scalar(input.normalizer) : tf.sum(tf.cast(tf.greater(perRow, 0), 'float32'));
      return tf.div(tf.sum(rowMeans), tf.maximum(rows, 1e-12)) as tf.Scalar;
    }
    const count = input.normalizer !== undefined ? tf.scalar(input.normalizer) : tf.sum(tf.cast(isTarget, 'float32'));
    return tf.div(tf.sum(kept), tf.maximum(count, 1e-12)) as tf.Scalar; // no targets: 0 / eps = 0
  });
}

/** (B, T) → (B, T): column t takes column t + 1; the last column is 0. */
function shiftLeft(x: tf.Tensor2D): tf.Tensor2D {
  const [B, T] = x.shape;
  return tf.concat([tf.slice(x, [0, 1], [B, T - 1]), tf.zeros([B, 1], x.dtype)], 1) as tf.Tensor2D; // (B, T)
}
