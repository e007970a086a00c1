import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, type DecodeOptions, type DecodeState, type LanguageModel } from '@skd/core';

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
    const init = args.table ? tf.tensor2d(args.table, [V, V], 'float32') : tf.randomNormal([V, V], 0, args.initScale ?? 0.02, 'float32', args.seed); // (V, V)
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

  startDecoding(batchSize: number, maxTokens: number): DecodeState {
    return new CounterState(batchSize, maxTokens);
  }

  decode(tokens: tf.Tensor2D, state: DecodeState, options: DecodeOptions = {}): tf.Tensor3D {
    if (!(state instanceof CounterState)) throw new TypeError('decode state does not belong to a BigramModel');
    const [B, S] = tokens.shape;
    const mask = options.mask ? Array.from(options.mask.dataSync()) : undefined;
    state.advance(Array.from({ length: B }, (_, b) => (mask ? mask.slice(b * S, (b + 1) * S).filter((m) => m !== 0).length : S)));
    if (!options.lastOnly) return this.logits(tokens);
    return tf.tidy(() => this.logits(tf.slice(tokens, [0, S - 1], [B, 1]) as tf.Tensor2D)); // (B, 1, V)
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

/** A bigram model needs no cache: the state only counts each row's tokens, so capacity and rollback are checked. */
class CounterState implements DecodeState {
  private readonly counts: number[];

  constructor(
    readonly batchSize: number,
    private readonly capacity: number,
  ) {
    this.counts = new Array<number>(batchSize).fill(0);
  }

  get lengths(): readonly number[] {
    return this.counts;
  }

  advance(added: readonly number[]): void {
    added.forEach((n, b) => {
      if ((this.counts[b] as number) + n > this.capacity) {
        throw new RangeError(`row ${b}: ${n} more tokens exceed the ${this.capacity} the state was started for (it holds ${this.counts[b]})`);
      }
    });
    added.forEach((n, b) => (this.counts[b] = (this.counts[b] as number) + n));
  }

  rollback(keep: readonly (number | undefined)[]): void {
    if (keep.length !== this.batchSize) throw new RangeError(`rollback needs one entry per row (${this.batchSize}), got ${keep.length}`);
    keep.forEach((n, b) => {
      if (n === undefined) return;
      if (n < 0 || n > (this.counts[b] as number)) throw new RangeError(`cannot roll row ${b} back to ${n} tokens: it holds ${this.counts[b]}`);
      this.counts[b] = n;
    });
  }

  dispose(): void {
    this.counts.fill(0);
  }
}
