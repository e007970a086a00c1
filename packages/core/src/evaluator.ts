import type { Example } from './dataset';

/** A model output beside the example it answers. */
export interface Prediction {
  readonly example: Example;
  /** Decoded generated text (greedy at evaluation, as in the paper). */
  readonly text: string;
}

/** Metric name → value; plain numbers only. */
export type Metrics = Readonly<Record<string, number>>;

/** Scores predictions. Generation happens outside, once, shared by every evaluator. */
export interface Evaluator {
  readonly name: string;
  evaluate(predictions: readonly Prediction[]): Promise<Metrics>;
}
