import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError } from '@skd/core';

/** One training row before padding: the prompt and the response that follows it. */
export interface SequenceRow {
  readonly prompt: readonly number[];
  readonly response: readonly number[];
}

export interface AssembledBatch {
  /** (B, T) int32, right-padded with `pad`. */
  readonly tokens: tf.Tensor2D;
  /** (B, T) float32: 1 for prompt and response tokens, 0 for padding. */
  readonly attentionMask: tf.Tensor2D;
  /** (B, T) float32: 1 for response tokens (EOS included), the loss targets. */
  readonly targetMask: tf.Tensor2D;
  /** Number of loss-target tokens. */
  readonly targetCount: number;
}

/**
 * The one place every sampler turns rows into padded tensors, so prompt, padding and EOS are
 * treated alike by all methods. Masks are built from lengths, never by comparing with the pad id:
 * an EOS that equals the pad id stays a target.
 */
export function assembleBatch(rows: readonly SequenceRow[], pad: number, contextLength: number): AssembledBatch {
  if (rows.length === 0) throw new SkdError('cannot assemble an empty batch');
  const lengths = rows.map((row, i) => {
    if (row.prompt.length === 0) {
      throw new SkdError(`row ${i} has an empty prompt; the first response token needs a token before it`, {
        hint: "start prompts with the tokenizer's BOS token",
      });
    }
    const length = row.prompt.length + row.response.length;
    if (length > contextLength) {
      throw new ShapeError(
        `row ${i} (prompt ${row.prompt.length} + response ${row.response.length} tokens)`,
        `at most ${contextLength} tokens`,
        `${length} tokens`,
        {
          hint: 'filter or truncate long examples in the dataset (training.onTooLong: "skip" skips them), or use a model with a longer context (student.options.contextLength, for a model the config defines)',
        },
      );
    }
    return length;
  });
  const B = rows.length;
  const T = Math.max(...lengths);
  const tokens = new Int32Array(B * T).fill(pad);
  const attention = new Float32Array(B * T);
  const target = new Float32Array(B * T);
  let targetCount = 0;
  rows.forEach((row, b) => {
    const base = b * T;
    const promptLength = row.prompt.length;
    row.prompt.forEach((id, t) => (tokens[base + t] = id));
    row.response.forEach((id, t) => {
      tokens[base + promptLength + t] = id;
      target[base + promptLength + t] = 1;
    });
    attention.fill(1, base, base + (lengths[b] as number));
    targetCount += row.response.length;
  });
  return {
    tokens: tf.tensor2d(tokens, [B, T], 'int32'), // (B, T)
    attentionMask: tf.tensor2d(attention, [B, T], 'float32'), // (B, T)
    targetMask: tf.tensor2d(target, [B, T], 'float32'), // (B, T)
    targetCount,
  };
}

/**
 * Teacher log-probabilities kept while sampling, as a (B, T, V) tensor aligned like logits: the
 * distribution that produced response token j of row b sits at column (prompt length + j - 1).
 * Columns that predict no target hold a uniform distribution (finite; masked out by the loss).
 */
export function teacherLogProbTensor(rows: readonly SequenceRow[], perToken: readonly (readonly Float32Array[])[], T: number, V: number): tf.Tensor3D {
  const data = new Float32Array(rows.length * T * V).fill(-Math.log(V));
  rows.forEach((row, b) => {
    (perToken[b] ?? []).forEach((logProbs, j) => {
      data.set(logProbs, (b * T + row.prompt.length + j - 1) * V);
    });
  });
  return tf.tensor3d(data, [rows.length, T, V]); // (B, T, V)
}
