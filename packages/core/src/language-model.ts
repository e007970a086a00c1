import type { Tensor2D, Tensor3D, Variable } from '@tensorflow/tfjs-core';

/**
 * A causal language model. Teacher and student are both this contract.
 *
 * Padding convention: a batch is a (B, T) int32 tensor plus an optional (B, T) mask of 1 (real
 * token) and 0 (padding). Training batches are right-padded; generation left-pads prompts so that
 * every row's next token lands in the same column. Positions count real tokens only.
 * Alignment: logits[:, t] is the distribution of token t + 1.
 */
export interface LanguageModel {
  readonly vocabSize: number;
  /** The longest sequence (prompt plus generated tokens) the model accepts. */
  readonly contextLength: number;
  /** Variables the optimizer updates. Empty for a frozen or table-free model. */
  readonly trainableVariables: readonly Variable[];

  /** Next-token logits for every position: tokens (B, T) → (B, T, V). Differentiable. */
  logits(tokens: Tensor2D, options?: ForwardOptions): Tensor3D;

  /**
   * Starts incremental decoding for `batchSize` rows of at most `maxTokens` real tokens each
   * (prompt and generated; padding slots take no room). `maxTokens` may not exceed `contextLength`.
   */
  startDecoding(batchSize: number, maxTokens: number): DecodeState;

  /**
   * Appends tokens (B, S) to a decode state and returns their logits (B, S, V), equal (within float
   * tolerance) to the matching columns of `logits` over each row's real tokens. Each row's real
   * slots (mask 1) are appended in order; padding slots (mask 0) are skipped, and their logits are
   * unspecified. S > 1 scores a block of proposed tokens in one forward pass (SKD's verification).
   */
  decode(tokens: Tensor2D, state: DecodeState, options?: DecodeOptions): Tensor3D;

  dispose(): void;
}

export interface ForwardOptions {
  /** (B, T): 1 for real tokens, 0 for padding. Default: all real. */
  readonly mask?: Tensor2D;
  /** Dropout on (true) or off (false, the default). */
  readonly training?: boolean;
  /** Seed for dropout masks when training; drawn from the run's Rng. */
  readonly seed?: number;
}

export interface DecodeOptions {
  /** (B, S): 1 for real tokens, 0 for padding slots (left padding, finished rows, unused draft slots). */
  readonly mask?: Tensor2D;
  /** Return only the last column's logits, (B, 1, V): what generation needs, without the head's cost for the rest. */
  readonly lastOnly?: boolean;
}

/** The key/value cache of an incremental decode. Owned by the caller: dispose it. */
export interface DecodeState {
  readonly batchSize: number;
  /** Real tokens held per row. Rows advance by their own number of real slots per decode call. */
  readonly lengths: readonly number[];
  /**
   * Keeps the first `keep[b]` tokens of row b (undefined: the whole row), e.g. the accepted part of
   * SKD's draft. Rows are independent: one row's rollback never touches another's tokens.
   */
  rollback(keep: readonly (number | undefined)[]): void;
  dispose(): void;
}

/** Vocabulary facts that teacher/student compatibility is checked on. */
export interface VocabularyInfo {
  readonly vocabSize: number;
  /** A digest of the token strings; equal digests mean the same token ids mean the same strings. */
  readonly fingerprint?: string;
}
