import type { Example } from './dataset';

/** A model output beside the example it answers. */
export interface Prediction {
  readonly example: Example;
  /** Decoded generated text (greedy at evaluation, as in the paper). */
  readonly text: string;
}

/** Metric name → value; plain numbers only. */
export type Metrics = Readonly<Record<string, number>>;

/**
 * What an evaluator's metrics are made of, example by example: each row holds additive statistics
 * of one prediction (a hit, n-gram match counts, a sentence score), and `score` turns the column sums
 * of any multiset of rows into the metrics, exactly as `evaluate` computes them from all rows.
 * Resampling rows gives bootstrap confidence intervals and paired tests (as sacreBLEU does with its
 * sufficient statistics), for corpus metrics such as BLEU as well as for means.
 */
export interface MetricStatistics {
  /** One row per prediction, in the order of the predictions; every row the same length. */
  readonly rows: readonly (readonly number[])[];
  /** The metrics of `count` examples whose rows sum to `sums`. */
  score(sums: readonly number[], count: number): Metrics;
}

/** Scores predictions. Generation happens outside, once, shared by every evaluator. */
export interface Evaluator {
  readonly name: string;
  evaluate(predictions: readonly Prediction[]): Promise<Metrics>;
  /** Per-example statistics behind the metrics; evaluators with them get 95% intervals and paired tests. */
  statistics?(predictions: readonly Prediction[]): Promise<MetricStatistics>;
}
