import * as tf from '@tensorflow/tfjs-core';
import { SkdError } from '@skd/core';

/**
 * A teacher distribution kept compactly: its top-k tokens and their log-probabilities, plus the
 * remaining mass as one tail bucket. Divergences over (k + 1) buckets approximate the dense ones
 * and equal them when k = V.
 */
export interface SparseTeacher {
  /** (B, T, k) int32 token ids, most probable first. */
  readonly indices: tf.Tensor3D;
  /** (B, T, k) float32 log-probabilities of those tokens. */
  readonly logProbs: tf.Tensor3D;
  /** (B, T) float32 log of the mass outside the top-k (floored, see TAIL_FLOOR). */
  readonly tailLogProb: tf.Tensor2D;
}

/**
 * Tails are floored at log(1e-30): an empty tail then contributes 0 to every divergence instead of
 * 0 * log 0 = NaN in values or gradients, and k = V reproduces the dense value.
 */
export const TAIL_FLOOR = Math.log(1e-30);

/** Teacher log-probabilities (B, T, V) → top-k buckets plus tail. */
export function compressTeacher(teacherLogProbs: tf.Tensor3D, k: number): SparseTeacher {
  const V = teacherLogProbs.shape[2];
  if (!Number.isInteger(k) || k < 1 || k > V) throw new SkdError(`sparse topK must be an integer in [1, ${V}], got ${k}`);
  return tf.tidy(() => {
    const { values, indices } = tf.topk(teacherLogProbs, k, true); // (B, T, k) each
    const tail = logOneMinusExp(tf.logSumExp(values, -1)); // (B, T)
    return {
      indices: indices as tf.Tensor3D,
      logProbs: values as tf.Tensor3D,
      tailLogProb: tf.maximum(tail, TAIL_FLOOR) as tf.Tensor2D,
    };
  });
}

/** log(1 - exp(x)) for x <= 0, accurate near 0 (expm1) and clamped to the tail floor. */
function logOneMinusExp(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const rest = tf.neg(tf.expm1(tf.minimum(x, 0))); // (...) in [0, 1]
    return tf.log(tf.maximum(rest, Math.exp(TAIL_FLOOR)));
  });
}

/**
 * The teacher's buckets and the student's mass on the same buckets, as two (B, T, k + 1)
 * log-probability tensors that any dense divergence accepts.
 */
export function bucketize(teacher: SparseTeacher, studentLogProbs: tf.Tensor3D): { logP: tf.Tensor3D; logQ: tf.Tensor3D } {
  return tf.tidy(() => {
    const [B, T, k] = teacher.indices.shape;
    const V = studentLogProbs.shape[2];
    const flatStudent = tf.reshape(studentLogProbs, [B * T, V]) as tf.Tensor2D; // (B*T, V)
    const flatIndices = tf.reshape(teacher.indices, [B * T, k]) as tf.Tensor2D; // (B*T, k)
    const picked = tf.reshape(gatherRows(flatStudent, flatIndices), [B, T, k]); // (B, T, k)
    const studentTail = logOneMinusExp(tf.logSumExp(picked, -1)); // (B, T)
    const logP = tf.concat([teacher.logProbs, tf.expandDims(teacher.tailLogProb, 2)], 2) as tf.Tensor3D; // (B, T, k+1)
    const logQ = tf.concat([picked, tf.expandDims(studentTail, 2)], 2) as tf.Tensor3D; // (B, T, k+1)
    return { logP, logQ };
  });
}

/** out[r, j] = x[r, idx[r, j]] for x (R, V), idx (R, k) → (R, k); differentiable in x. */
function gatherRows(x: tf.Tensor2D, idx: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [R, V] = x.shape;
    const k = idx.shape[1];
    const offsets = tf.mul(tf.range(0, R, 1, 'int32'), tf.scalar(V, 'int32')); // (R)
    const flat = tf.add(tf.cast(idx, 'int32'), tf.expandDims(offsets, 1)); // (R, k)
    return tf.reshape(tf.gather(tf.reshape(x, [R * V]), tf.reshape(flat, [R * k])), [R, k]) as tf.Tensor2D;
  });
}
