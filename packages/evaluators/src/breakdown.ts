import { FormatError, SkdError, type Evaluator, type Metrics, type MetricStatistics, type Prediction } from '@skd/core';
import { scoreAll } from './statistics';

/** The name a metric takes on one category of a breakdown: `passRate[reverse]`. */
export function categoryMetric(metric: string, category: string): string {
  return `${metric}[${category}]`;
}

/**
 * An evaluator's metrics on all examples and, beside them, on each value of one example field (the
 * task type, a difficulty, a source): `passRate` and `passRate[reverse]`, `passRate[sort]`, ...
 *
 * It is built on the evaluator's per-example statistics, so every category's metric is computed the
 * way the whole one is (BLEU from its summed n-gram counts, not averaged per example) and gets its own
 * bootstrap interval and paired tests: each row holds the example's statistics once for the whole and
 * once more in its category's block, with a column counting the category's examples in a resample.
 * A category that a resample misses entirely scores as the evaluator scores no examples (0 for the
 * bundled ones), which only happens often for categories of a handful of examples: break down by a
 * field whose values each cover tens of examples, or read those intervals as the noise they are.
 */
export class FieldBreakdown implements Evaluator {
  readonly name: string;

  constructor(
    private readonly inner: Evaluator & Required<Pick<Evaluator, 'statistics'>>,
    readonly field: string,
  ) {
    this.name = `${inner.name} by ${field}`;
  }

  /** `evaluator` broken down by `field`; fails for evaluators without per-example statistics. */
  static of(evaluator: Evaluator, field: string): FieldBreakdown {
    if (!evaluator.statistics) {
      throw new SkdError(`evaluator "${evaluator.name}" has no per-example statistics, so its metrics cannot be broken down by "${field}"`, {
        hint: 'give the evaluator a statistics() method (see MetricStatistics), or leave training.breakdownBy unset',
      });
    }
    return new FieldBreakdown(evaluator as Evaluator & Required<Pick<Evaluator, 'statistics'>>, field);
  }

  async evaluate(predictions: readonly Prediction[]): Promise<Metrics> {
    const statistics = await this.statistics(predictions);
    return scoreAll(statistics, statistics.rows[0]?.length ?? 0);
  }

  async statistics(predictions: readonly Prediction[]): Promise<MetricStatistics> {
    const whole = await this.inner.statistics(predictions);
    const labels = predictions.map((p) => this.categoryOf(p));
    const categories = [...new Set(labels)].sort();
    const width = whole.rows[0]?.length ?? 0;
    const block = width + 1; // the category's statistics, then how many of its examples are drawn
    const rows = whole.rows.map((row, i) => {
      const out = new Array<number>(width + categories.length * block).fill(0);
      row.forEach((v, c) => (out[c] = v));
      const at = width + categories.indexOf(labels[i] as string) * block;
      row.forEach((v, c) => (out[at + c] = v));
      out[at + width] = 1;
      return out;
    });
    const score = (sums: readonly number[], count: number): Metrics => {
      const metrics: Record<string, number> = { ...whole.score(sums.slice(0, width), count) };
      categories.forEach((category, k) => {
        const at = width + k * block;
        for (const [name, value] of Object.entries(whole.score(sums.slice(at, at + width), sums[at + width] as number))) {
          if (name !== 'count') metrics[categoryMetric(name, category)] = value;
        }
      });
      return metrics;
    };
    return { rows, score };
  }

  private categoryOf(prediction: Prediction): string {
    const value = prediction.example.fields?.[this.field];
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw new FormatError(
      prediction.example.id,
      `no "${this.field}" to break the metrics down by (found ${value === undefined ? 'nothing' : JSON.stringify(value)})`,
      {
        hint: `keep the field with dataset.options.fields.extra: [..., "${this.field}"], or leave training.breakdownBy unset`,
      },
    );
  }
}
