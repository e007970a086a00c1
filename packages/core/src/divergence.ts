import type { Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { JsonValue } from './sampler';

/** Inputs of a token-level divergence; all aligned like logits (column t predicts token t + 1). */
export interface DivergenceInput {
  /** (B, T, V) student logits. Gradients flow through these. */
  readonly studentLogits: Tensor3D;
  /** (B, T, V) teacher logits; or pass `teacherLogProbs` when they were cached while sampling. */
  readonly teacherLogits?: Tensor3D;
  readonly teacherLogProbs?: Tensor3D;
  /** (B, T) int32 next-token targets, for cross-entropy. */
  readonly targets?: Tensor2D;
  /**
   * (B, T) 1 where column t's prediction is a loss target (aligned with the logits), for a divergence
   * whose value at a position depends on the positions after it (MiniLLM's discounted reward).
   * Absent where positions are taken apart from their sequences (the chunked loss).
   */
  readonly lossMask?: Tensor2D;
}

/**
 * A per-token divergence: (B, T, V) logits → (B, T) values. Masking and reduction are not its job:
 * they happen in one shared place (the loss assembly in @skd/divergences), the same for every method.
 */
export interface Divergence {
  readonly name: string;
  /** False for cross-entropy to the references (supervised FT): the teacher is never run. */
  readonly needsTeacher: boolean;
  perToken(input: DivergenceInput): Tensor2D;
  /**
   * Optional, for a divergence whose target moves over training (TAID's interpolation): told each
   * optimizer step's loss after the step, it updates what its next steps compute.
   */
  observe?(feedback: DivergenceFeedback): void;
  /** Its numbers to report beside each step's loss (TAID: the `t` the step used); read before `observe`. */
  stats?(): Readonly<Record<string, number>>;
  /** JSON state that checkpoints save, so a resumed run continues the same schedule. */
  getState?(): JsonValue;
  setState?(state: JsonValue): void;
  /**
   * Optional, for a divergence that compares models with different tokenizers (ULD, GOLD): each
   * response's loss over its aligned groups (the trainer averages them over the step's responses,
   * weighted like sequences). A run whose teacher reads another tokenizer needs it.
   */
  aligned?(responses: readonly AlignedResponse[], vocabularies: () => TokenVocabularies): AlignedLoss;
}

/** A token's [start, end) UTF-8 byte range in the text both sides of an aligned response decode. */
export type ByteSpan = readonly [number, number];

/** One response as both tokenizers read it: the rows that score its tokens, and where each token's bytes lie. */
export interface AlignedResponse {
  /** (n_s, V_s) student logits, row k scoring the student's token k. Gradients flow through these. */
  readonly studentLogits: Tensor2D;
  /** (n_t, V_t) teacher logits, row k scoring the teacher's token k. */
  readonly teacherLogits: Tensor2D;
  readonly studentTokens: readonly number[];
  readonly teacherTokens: readonly number[];
  readonly studentSpans: readonly ByteSpan[];
  readonly teacherSpans: readonly ByteSpan[];
  /** Whether both sides' last token is the end of the response (EOS, or a stop id), covering no bytes. */
  readonly ended: boolean;
}

/** Each side's token texts (text → id), for a divergence that matches tokens both vocabularies hold. */
export interface TokenVocabularies {
  readonly student: ReadonlyMap<string, number>;
  readonly teacher: ReadonlyMap<string, number>;
}

/** An aligned loss: per response, its value (the mean over its aligned groups) and how many groups it had. */
export interface AlignedLoss {
  /** (R) each response's value. */
  readonly values: Tensor1D;
  readonly groups: readonly number[];
}

/** What a divergence is told after each optimizer step. */
export interface DivergenceFeedback {
  /** The step just taken, counted from 0 (the optimizer steps done before it). */
  readonly step: number;
  readonly totalSteps: number;
  /** The step's loss (its micro-batches' sum, as the step event reports it). */
  readonly loss: number;
}
