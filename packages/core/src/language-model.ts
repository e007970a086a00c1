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
   * Starts incremental decoding for `batchSize` rows of at most `maxColumns` cached columns. Masked
   * columns (padding, rolled-back drafts) take columns but not positions: the caller keeps each row's
   * real tokens within `contextLength`.
   */
  startDecoding(batchSize: number, maxColumns: number): DecodeState;

  /**
   * Appends tokens (B, S) to a decode state and returns their logits (B, S, V), equal (within float
   * tolerance) to the matching columns of `logits` over the whole prefix. S > 1 scores a block of
   * proposed tokens in one forward pass (SKD's verification step).
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
  /** (B, S): 1 for real tokens, 0 for padding slots (left padding, or rows that already finished). */
  readonly mask?: Tensor2D;
}

/** The key/value cache of an incremental decode. Owned by the caller: dispose it. */
export interface DecodeState {
  readonly batchSize: number;
  /** Number of cached columns (the same for every row; rows pad with masked slots). */
  readonly length: number;
  /** Forgets cached columns from `length` on (every row), e.g. the rejected part of a draft. */
  truncate(length: number): void;
  /**
   * Per-row rollback: masks row b's cached columns from `fromColumns[b]` on (undefined: keep the
   * row). The columns stay, masked, so rows that accepted different numbers of drafted tokens keep
   * sharing one cache; positions count only unmasked columns.
   */
  maskFrom(fromColumns: readonly (number | undefined)[]): void;
  dispose(): void;
}

/** Vocabulary facts that teacher/student compatibility is checked on. */
export interface VocabularyInfo {
  readonly vocabSize: number;
  /** A digest of the token strings; equal digests mean the same token ids mean the same strings. */
  readonly fingerprint?: string;
}
