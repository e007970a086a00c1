import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, type DecodeState, type LanguageModel } from '@skd/core';

export interface BigramModelArgs {
  readonly vocabSize: number;
  readonly contextLength: number;
  /** Seed of the initial weights (normal, std `initScale`). */
  readonly seed: number;
  readonly initScale?: number;
  /** Fixed logits table (V, V) instead of random initial weights. */
  readonly table?: number[][];
}

/**
 * The smallest real language model: next-token logits depend on the current token only, through a
 * trainable (V, V) table. Its distributions are known in closed form, which makes it the toy
 * teacher/student for statistical sampler tests, and a baseline that trains in seconds.
 */
export class BigramModel implements LanguageModel {
  static readonly kind = 'bigram';
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly table: tf.Variable<tf.Rank.R2>;

  /** A bigram whose next-token distribution after token a is exactly `probabilities[a]` (a toy with known distributions). */
  static fromProbabilities(probabilities: readonly (readonly number[])[], contextLength = 64): BigramModel {
    return new BigramModel({ vocabSize: probabilities.length, contextLength, seed: 0, table: probabilities.map((row) => row.map(Math.log)) });
  }

  constructor(args: BigramModelArgs) {
    this.vocabSize = args.vocabSize;
    this.contextLength = args.contextLength;
    const V = args.vocabSize;
    if (args.table && (args.table.length !== V || args.table.some((row) => row.length !== V))) {
      throw new ShapeError('bigram table', `(${V}, ${V})`, [args.table.length, args.table[0]?.length ?? 0]);
    }
    const init = args.table
      ? tf.tensor2d(args.table, [V, V], 'float32')
      : tf.randomNormal([V, V], 0, args.initScale ?? 0.02, 'float32', args.seed); // (V, V)
    this.table = tf.variable(init, true, `bigram/table/${uniqueSuffix()}`) as tf.Variable<tf.Rank.R2>;
    init.dispose();
  }

  get trainableVariables(): readonly tf.Variable[] {
    return [this.table];
  }

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = tokens.shape;
      const rows = tf.gather(this.table, tf.reshape(tokens, [-1])); // (B*T, V)
      return tf.reshape(rows, [B, T, this.vocabSize]) as tf.Tensor3D; // (B, T, V)
    });
  }

  startDecoding(batchSize: number, maxColumns: number): DecodeState {
    return new CounterState(batchSize, maxColumns);
  }

  decode(tokens: tf.Tensor2D, state: DecodeState): tf.Tensor3D {
    if (!(state instanceof CounterState)) throw new TypeError('decode state does not belong to a BigramModel');
    state.advance(tokens.shape[1]);
    return this.logits(tokens);
  }

  dispose(): void {
    this.table.dispose();
  }
}

let counter = 0;
function uniqueSuffix(): number {
  counter += 1;
  return counter;
}

/** A bigram model needs no cache: the state only counts columns so truncation is checked. */
class CounterState implements DecodeState {
  private filled = 0;
  constructor(
    readonly batchSize: number,
    private readonly capacity: number,
  ) {}

  get length(): number {
    return this.filled;
  }

  advance(columns: number): void {
    if (this.filled + columns > this.capacity) {
      throw new RangeError(`decode past the columns the state was started for: ${this.filled} + ${columns} > ${this.capacity}`);
    }
    this.filled += columns;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.filled) throw new RangeError(`cannot truncate ${this.filled} columns to ${length}`);
    this.filled = length;
  }

  /** A bigram's logits depend on the current token only: masking past columns changes nothing to check. */
  maskFrom(fromColumns: readonly (number | undefined)[]): void {
    if (fromColumns.length !== this.batchSize) throw new RangeError(`maskFrom needs one entry per row (${this.batchSize}), got ${fromColumns.length}`);
  }

  dispose(): void {
    this.filled = 0;
  }
}
