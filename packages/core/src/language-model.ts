import type { Tensor2D, Tensor3D, Variable } from '@tensorflow/tfjs-core';
import type { Rng } from './rng';

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
  /** True when `logits` takes `checkpointLayers` (gradient checkpointing per block). */
  readonly checkpointsLayers?: boolean;

  /** Next-token logits for every position: tokens (B, T) → (B, T, V). Differentiable. */
  logits(tokens: Tensor2D, options?: ForwardOptions): Tensor3D;

  /**
   * Optional, with `outputLayer`: the hidden states the output layer reads, (B, T, d), differentiable
   * like `logits`; `outputLayer.project` of a row gives that row's logits. A loss over a large
   * vocabulary can then take the logits a slice of positions at a time.
   */
  features?(tokens: Tensor2D, options?: ForwardOptions): Tensor3D;
  readonly outputLayer?: OutputLayer;

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

  /**
   * Optional: runs a whole sampling loop (choose, read back, repeat) in one call where the model
   * can, e.g. as one native kernel. Must give exactly the tokens, cache lengths and random draws of
   * the step-by-step loop it replaces; returns undefined when it cannot (the caller then runs that
   * loop with `decode`).
   */
  generateTokens?(state: DecodeState, loop: GenerationLoop): Promise<number[][] | undefined>;

  dispose(): void;
}

/** A model's output layer apart from the network (see LanguageModel.features). */
export interface OutputLayer {
  /**
   * (V', d): the matrix the logits are products with, when it trains (a student's variable). Absent
   * when the output layer is frozen (a LoRA student's head, a 16-bit base): no gradient is taken for it.
   */
  readonly weight?: Tensor2D;
  /**
   * Logits (n, V) of hidden states (n, d): through `weight`, which a trainable layer is passed so a
   * gradient reaches it; a frozen layer (no `weight`) reads its own and ignores the argument.
   */
  project(hidden: Tensor2D, weight?: Tensor2D): Tensor2D;
}

/** How the next token is chosen from a logit row. */
export interface SamplingOptions {
  /** Argmax (ties: lowest id). Ignores the other options. */
  readonly greedy?: boolean;
  /** Divides logits; < 1 sharpens, > 1 flattens. Default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0: off). */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p (1: off). */
  readonly topP?: number;
}

/**
 * A sampling loop over a decode state: each live row chooses a token from its next-token logits,
 * reads it back in and goes on, until EOS, its budget or `steps`; the token a row stops on is chosen
 * but not read. Each non-greedy choice takes one draw from `rng`, rows in order, step by step.
 */
export interface GenerationLoop {
  /** Most tokens chosen per row. */
  readonly steps: number;
  readonly eos: number;
  /** Ids besides `eos` that end a row (see SpecialTokens.stop). */
  readonly stop?: readonly number[];
  readonly sampling: SamplingOptions;
  readonly rng: Rng;
  /** Rows that generate (default all). */
  readonly live?: readonly boolean[];
  /** Most tokens for each row (default `steps`). */
  readonly budgets?: readonly number[];
  /** Per row, a token to read before the first choice (SKD's pending token); undefined: none. */
  readonly feed?: readonly (number | undefined)[];
  /** (B, V) next-token logits of the rows that read nothing first. */
  readonly logits?: Tensor2D;
}

export interface ForwardOptions {
  /** (B, T): 1 for real tokens, 0 for padding. Default: all real. */
  readonly mask?: Tensor2D;
  /** Dropout on (true) or off (false, the default). */
  readonly training?: boolean;
  /** Seed for dropout masks when training; drawn from the run's Rng. */
  readonly seed?: number;
  /**
   * Gradient checkpointing: keep only each block's input for the backward pass and run the block
   * again there (less memory, one more forward). Only models whose `checkpointsLayers` is true take it.
   */
  readonly checkpointLayers?: boolean;
}

export interface DecodeOptions {
  /**
   * (B, S): 1 for real tokens, 0 for padding slots (left padding, finished rows, unused draft slots).
   * A padding slot's logits mean nothing (DecoderModel leaves the slot out of the network and returns 0 there).
   */
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
