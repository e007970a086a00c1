import type * as tf from '@tensorflow/tfjs-core';
import type { KdBatch, SamplerStats } from '@skd/core';
import { assembleBatch, teacherLogProbTensor, type SequenceRow } from './assemble';

export interface BatchParts {
  readonly rows: readonly SequenceRow[];
  readonly sources: readonly string[];
  readonly stats: SamplerStats;
  readonly pad: number;
  readonly contextLength: number;
  /** Per row, per response token: the teacher's log-probabilities (kept while sampling). */
  readonly teacherLogProbs?: readonly (readonly Float32Array[])[];
  readonly vocabSize?: number;
}

/** Rows → a KdBatch owning its tensors. */
export function toKdBatch(parts: BatchParts): KdBatch {
  const assembled = assembleBatch(parts.rows, parts.pad, parts.contextLength);
  const T = assembled.tokens.shape[1];
  const teacher = parts.teacherLogProbs && parts.vocabSize ? teacherLogProbTensor(parts.rows, parts.teacherLogProbs, T, parts.vocabSize) : undefined;
  const owned: tf.Tensor[] = [assembled.tokens, assembled.attentionMask, assembled.targetMask, ...(teacher ? [teacher] : [])];
  return {
    tokens: assembled.tokens,
    attentionMask: assembled.attentionMask,
    targetMask: assembled.targetMask,
    ...(teacher ? { teacherLogProbs: teacher } : {}),
    sources: parts.sources,
    stats: { targetTokens: assembled.targetCount, ...parts.stats },
    dispose: () => owned.forEach((t) => t.dispose()),
  };
}
