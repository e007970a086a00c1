import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError, type Divergence, type OutputLayer } from '@skd/core';
import { gradientsWithin } from '@skd/ops';

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
  return predictingRows(targetMask).filter((row) => row.some((m) => m > 0)).length;
}

/** Number of loss-target tokens in a batch (those with a preceding position to predict them). */
export function countTargets(targetMask: tf.Tensor2D): number {
  return predictingRows(targetMask).reduce((n, row) => n + row.filter((m) => m > 0).length, 0);
}

/**
 * The target mask shifted left, read on the host: row b's entry t is position t's weight as the
 * predictor of token t + 1 (0 at the last position). Reads the mask's own values (host-made tensors
 * keep them on every backend, WebGPU's included), never a computed tensor.
 */
function predictingRows(targetMask: tf.Tensor2D): number[][] {
  const [B, T] = targetMask.shape;
  const values = targetMask.dataSync();
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (t + 1 < T ? (values[b * T + t + 1] as number) : 0)));
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
      lossMask: mask,
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

/** tokenLoss's input with the student's output layer apart: its logits are taken a slice of positions at a time. */
export interface ChunkedTokenLossInput extends Omit<TokenLossInput, 'studentLogits'> {
  /** (B, T, d) the student's hidden states before its output layer (`LanguageModel.features`). */
  readonly studentFeatures: tf.Tensor3D;
  readonly outputLayer: OutputLayer;
  /** Target positions per slice: at most chunk x V logits (and their gradient) exist at once. */
  readonly chunk: number;
}

/**
 * tokenLoss without the (B, T, V) student logits: only positions that are loss targets go through the
 * output layer, `chunk` of them at a time, in the forward pass and again in the backward pass (which
 * recomputes each slice's logits to take its gradient), so the vocabulary-sized tensors held at once
 * are one slice's. Equal in value and gradients to tokenLoss on `outputLayer.project` of the features.
 * The teacher's rows are gathered at the same positions (its distributions are kept for the backward).
 */
export function chunkedTokenLoss(input: ChunkedTokenLossInput): tf.Scalar {
  const { tokens, targetMask, studentFeatures, outputLayer, divergence } = input;
  const [B, T] = tokens.shape;
  if (studentFeatures.shape[0] !== B || studentFeatures.shape[1] !== T) {
    throw new ShapeError('student features', `(${B}, ${T}, d) to match the tokens`, studentFeatures.shape);
  }
  if (!(Number.isInteger(input.chunk) && input.chunk >= 1)) throw new SkdError(`chunk must be an integer >= 1, got ${input.chunk}`);
  if (input.sequenceWeights && input.sequenceWeights.length !== B) {
    throw new SkdError(`sequenceWeights must have one weight per row (${B}), got ${input.sequenceWeights.length}`);
  }
  // Which positions predict a target, and each one's weight in the reduction (as tokenLoss reduces).
  const maskRows = predictingRows(targetMask);
  const positions: number[] = [];
  const weights: number[] = [];
  const perRow = maskRows.map((row) => row.filter((m) => m > 0).length);
  const rows = input.normalizer ?? (input.reduction === 'sequences' ? perRow.filter((n) => n > 0).length : perRow.reduce((a, b) => a + b, 0));
  maskRows.forEach((row, b) =>
    row.forEach((m, t) => {
      if (!(m > 0)) return;
      positions.push(b * T + t);
      const sequence = input.sequenceWeights?.[b] ?? 1;
      weights.push(input.reduction === 'sequences' ? sequence / (perRow[b] as number) / Math.max(rows, 1e-12) : sequence / Math.max(rows, 1e-12));
    }),
  );
  const N = positions.length;
  const d = studentFeatures.shape[2];
  if (N === 0) return tf.tidy(() => tf.mul(tf.sum(studentFeatures), 0) as tf.Scalar);
  const teacherSource = input.teacherLogProbs ?? input.teacherLogits;
  const { index, hidden, targets, teacher, weight } = tf.tidy(() => {
    const index = tf.tensor1d(positions, 'int32'); // (N)
    return {
      index,
      hidden: tf.gather(tf.reshape(studentFeatures, [B * T, d]), index) as tf.Tensor2D, // (N, d)
      targets: tf.gather(tf.reshape(shiftLeft(tokens), [B * T]), index) as tf.Tensor1D, // (N)
      teacher: teacherSource ? (tf.gather(tf.reshape(teacherSource, [B * T, -1]), index) as tf.Tensor2D) : undefined, // (N, V)
      weight: tf.tensor1d(weights), // (N)
    };
  });
  const slices = Array.from({ length: Math.ceil(N / input.chunk) }, (_, k) => [k * input.chunk, Math.min(N, (k + 1) * input.chunk) - k * input.chunk] as const);
  /** One slice's weighted loss: its logits through the output layer, the divergence, the weights. */
  type Rows = { readonly targets: tf.Tensor1D; readonly teacher: tf.Tensor2D | undefined; readonly weight: tf.Tensor1D };
  const sliceLoss = (h: tf.Tensor2D, w: tf.Tensor2D | undefined, rows: Rows, [start, size]: readonly [number, number]): tf.Scalar => {
    const logits = tf.expandDims(outputLayer.project(h, w), 0) as tf.Tensor3D; // (1, n, V)
    const teacherRows = rows.teacher ? (tf.expandDims(tf.slice(rows.teacher, [start, 0], [size, -1]), 0) as tf.Tensor3D) : undefined; // (1, n, V)
    const values = divergence.perToken({
      studentLogits: logits,
      targets: tf.expandDims(tf.slice(rows.targets, [start], [size]), 0) as tf.Tensor2D,
      ...(teacherRows ? (input.teacherLogProbs ? { teacherLogProbs: teacherRows } : { teacherLogits: teacherRows }) : {}),
    }); // (1, n)
    return tf.sum(tf.mul(tf.squeeze(values, [0]), tf.slice(rows.weight, [start], [size]))) as tf.Scalar;
  };
  // The head's weight is an input of the op (and gets a gradient) only when it trains.
  const trains = outputLayer.weight !== undefined;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const w = trains ? (args[1] as tf.Tensor2D) : undefined;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    // Saved (and so kept until the backward) beside the inputs: what each slice's recomputation reads.
    save([h, targets, weight, ...(teacher ? [teacher] : []), ...(w ? [w] : [])]);
    let total = tf.scalar(0);
    for (const part of slices) {
      const next = tf.tidy(() => tf.add(total, sliceLoss(tf.slice(h, [part[0], 0], [part[1], d]), w, { targets, teacher, weight }, part)));
      total.dispose();
      total = next as tf.Scalar;
    }
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, st, sweight] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const steacher = teacher ? (saved[3] as tf.Tensor2D) : undefined;
        const sw = trains ? (saved[saved.length - 1] as tf.Tensor2D) : undefined;
        const rows = { targets: st, teacher: steacher, weight: sweight };
        const dh: tf.Tensor[] = [];
        let dw: tf.Tensor | undefined = sw ? tf.zerosLike(sw) : undefined;
        for (const part of slices) {
          const h = tf.slice(sh, [part[0], 0], [part[1], d]); // (n, d)
          const [gh, gw] = gradientsWithin(() => sliceLoss(h, sw, rows, part), sw ? [h, sw] : [h], dy) as [tf.Tensor, tf.Tensor | undefined];
          h.dispose();
          dh.push(gh);
          if (dw && gw) {
            const next = tf.add(dw, gw);
            tf.dispose([dw, gw]);
            dw = next;
          }
        }
        const dhAll = tf.concat(dh, 0); // (N, d)
        tf.dispose(dh);
        return dw ? [dhAll, dw] : [dhAll];
      },
    };
  });
  try {
    return (outputLayer.weight ? run(hidden, outputLayer.weight) : run(hidden)) as tf.Scalar;
  } finally {
    // The op saved what its backward reads; without a tape nothing else needs them.
    tf.dispose([index, hidden, targets, weight, ...(teacher ? [teacher] : [])]);
  }
}
