import type { Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';

/** What a KD sampler receives: token ids per example, unpadded. */
export interface PromptBatch {
  /** Prompt token ids per example. */
  readonly prompts: readonly (readonly number[])[];
  /** Reference (ground-truth) response token ids per example, ending with EOS. */
  readonly references: readonly (readonly number[])[];
  /** Stable example ids, for samplers that cache per example (SeqKD). */
  readonly ids: readonly string[];
  /** The dataset's stop strings: generated responses are cut before the first (see `cutAtStopStrings`). */
  readonly stopStrings?: readonly string[];
}

/**
 * The training sequences a sampler produced. Tensors are owned by the batch: `dispose()` frees them.
 * Alignment: `targetMask[b, t] = 1` when token t of row b is trained on, i.e. predicted from the
 * logits at column t - 1. Prompt and padding columns are 0; the EOS that ends a response is 1.
 */
export interface KdBatch {
  /** (B, T) int32: prompt, response, then padding (right-padded). */
  readonly tokens: Tensor2D;
  /** (B, T) float32: 1 for real tokens, 0 for padding. */
  readonly attentionMask: Tensor2D;
  /** (B, T) float32: 1 where the token is a loss target. */
  readonly targetMask: Tensor2D;
  /**
   * (B, T, V) float32 teacher log-probabilities computed while sampling, aligned like logits
   * (column t is the distribution of token t + 1). Absent: the trainer runs the teacher itself.
   */
  readonly teacherLogProbs?: Tensor3D;
  /** Per-sequence loss weights (length B). Absent: all 1. */
  readonly sequenceWeights?: readonly number[];
  /** Which method produced each row, for statistics ("student", "teacher", "reference", "skd"). */
  readonly sources: readonly string[];
  readonly stats: SamplerStats;
  dispose(): void;
}

/** Plain numbers per batch, e.g. `acceptanceRate`, `tokensGenerated`, `teacherPassesPerToken`. */
export type SamplerStats = Readonly<Record<string, number>>;

export interface SamplerContext {
  /** Optimizer step this batch trains (0-based). */
  readonly step: number;
  readonly totalSteps: number;
}

/** Feedback the trainer gives a sampler (DistiLLM adapts to validation loss). */
export interface SamplerFeedback {
  readonly step: number;
  readonly validationLoss?: number;
}

/** JSON-serialisable state a sampler needs for exact resume (replay buffers, schedules). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A KD data sampler: given prompts and references, returns the sequences the student trains on. */
export interface KdSampler {
  sample(batch: PromptBatch, context: SamplerContext): Promise<KdBatch>;
  observe?(feedback: SamplerFeedback): void;
  getState?(): JsonValue;
  setState?(state: JsonValue): void;
  dispose?(): void;
}
