import { createHash } from 'node:crypto';
import { Rng, SkdError, type Evaluator, type Metrics, type MetricStatistics, type Prediction } from '@skd/core';
import { sumRows } from './text-metrics';

/** The metrics from every row: what `evaluate` returns for an evaluator defined by its statistics. */
export function scoreAll(statistics: MetricStatistics, width: number): Metrics {
  return statistics.score(sumRows(statistics.rows, width), statistics.rows.length);
}

/** `score` for one 0/1 column: the share of ones under `name` (0 for no examples). */
export function shareOf(name: string): MetricStatistics['score'] {
  return (sums, count) => ({ [name]: count > 0 ? (sums[0] ?? 0) / count : 0, count });
}

export interface BootstrapOptions {
  /** Resamples (default 1000, as sacreBLEU's paired bootstrap). */
  readonly samples?: number;
  /** Seed of the resampling plan (default 12345); runs compare only under the same plan. */
  readonly seed?: number;
}

export const DEFAULT_BOOTSTRAP = { samples: 1000, seed: 12345 } as const;

/**
 * One system's metrics on its evaluation examples and on each of a fixed set of bootstrap resamples
 * of them. The resamples are drawn from `seed` over the examples sorted by id, so every run scored on
 * the same examples sees the same resamples: two runs' paired bootstrap test is the difference of
 * their stored vectors, with no model or evaluator needed again.
 */
export interface BootstrapScores {
  /** SHA-256 of the sorted example ids (runs are comparable only when these agree). */
  readonly examples: string;
  readonly count: number;
  readonly samples: number;
  readonly seed: number;
  /** Each metric on all examples (what the evaluators report). */
  readonly values: Record<string, number>;
  /** Each metric on each resample. */
  readonly resamples: Record<string, number[]>;
}

/** Where the middle `confidence` of a sample lies: its percentile interval (nearest rank). */
export function percentileInterval(values: readonly number[], confidence = 0.95): [number, number] {
  if (values.length === 0) throw new RangeError('no values');
  const sorted = [...values].sort((a, b) => a - b);
  const tail = Math.floor(((1 - confidence) / 2) * sorted.length);
  return [sorted[tail] as number, sorted[sorted.length - 1 - tail] as number];
}

/**
 * Bootstrap scores of predictions under every evaluator that exposes per-example statistics
 * (others are skipped; their metrics get no interval). `count` metrics are not resampled.
 */
export async function bootstrapScores(
  predictions: readonly Prediction[],
  evaluators: readonly Evaluator[],
  options: BootstrapOptions = {},
): Promise<BootstrapScores> {
  const samples = options.samples ?? DEFAULT_BOOTSTRAP.samples;
  const seed = options.seed ?? DEFAULT_BOOTSTRAP.seed;
  const ordered = [...predictions].sort((a, b) => (a.example.id < b.example.id ? -1 : a.example.id > b.example.id ? 1 : 0));
  const ids = ordered.map((p) => p.example.id);
  if (new Set(ids).size !== ids.length) throw new SkdError('bootstrap: example ids repeat', { hint: 'every evaluation example needs its own id' });
  const n = ordered.length;
  if (n === 0) throw new SkdError('bootstrap: no predictions to resample');
  // The plan: which example each resample draws, the same for every run on these examples.
  const rng = Rng.create(seed);
  const plan = Array.from({ length: samples }, () => Int32Array.from({ length: n }, () => rng.int(n)));
  const values: Record<string, number> = {};
  const resamples: Record<string, number[]> = {};
  for (const evaluator of evaluators) {
    if (!evaluator.statistics) continue;
    const statistics = await evaluator.statistics(ordered);
    const width = statistics.rows[0]?.length ?? 0;
    const full = statistics.score(sumRows(statistics.rows, width), n);
    for (const [name, value] of Object.entries(full)) {
      if (name === 'count') continue;
      values[name] = value;
      resamples[name] = [];
    }
    for (const draw of plan) {
      const sums = new Array<number>(width).fill(0);
      for (const i of draw) {
        const row = statistics.rows[i] as readonly number[];
        for (let c = 0; c < width; c++) sums[c] = (sums[c] as number) + (row[c] as number);
      }
      for (const [name, value] of Object.entries(statistics.score(sums, n))) resamples[name]?.push(value);
    }
  }
  return { examples: createHash('sha256').update(ids.join('\n')).digest('hex'), count: n, samples, seed, values, resamples };
}

/** Several runs of one system (its seeds) as one: metrics and resampled metrics averaged over runs. */
export function averageScores(runs: readonly BootstrapScores[]): BootstrapScores {
  const first = runs[0];
  if (!first) throw new RangeError('no runs to average');
  for (const run of runs) comparable(first, run);
  const names = Object.keys(first.values).filter((name) => runs.every((r) => r.values[name] !== undefined));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    ...first,
    values: Object.fromEntries(names.map((name) => [name, mean(runs.map((r) => r.values[name] as number))])),
    resamples: Object.fromEntries(
      names.map((name) => [name, Array.from({ length: first.samples }, (_, i) => mean(runs.map((r) => (r.resamples[name] as number[])[i] as number)))]),
    ),
  };
}

function comparable(a: BootstrapScores, b: BootstrapScores): void {
  if (a.examples !== b.examples || a.samples !== b.samples || a.seed !== b.seed) {
    throw new SkdError(
      `bootstrap scores are not comparable: ${a.count} vs ${b.count} examples (ids ${a.examples === b.examples ? 'equal' : 'differ'}), plans ${a.samples}/${a.seed} vs ${b.samples}/${b.seed}`,
      {
        hint: 'compare runs evaluated on the same test examples (same data, training.testLimit and training.evalOrder)',
      },
    );
  }
}

/** The 95% interval of each metric of a system (or of a group averaged by `averageScores`). */
export function intervals(scores: BootstrapScores, confidence = 0.95): Record<string, [number, number]> {
  return Object.fromEntries(Object.entries(scores.resamples).map(([name, values]) => [name, percentileInterval(values, confidence)]));
}

export interface PairedResult {
  /** system − baseline on all examples. */
  readonly delta: number;
  /** Percentile interval of the difference over the shared resamples. */
  readonly interval: [number, number];
  /** Two-sided p-value of "no difference". */
  readonly p: number;
}

/**
 * Paired bootstrap test (Koehn, 2004; sacreBLEU's --paired-bs): both systems are scored on the same
 * resamples, and the differences, centred on their mean to stand for "no difference", are compared
 * with the observed one: p = (#{|d_i - mean d| >= |observed|} + 1) / (samples + 1).
 */
export function pairedBootstrap(system: BootstrapScores, baseline: BootstrapScores, confidence = 0.95): Record<string, PairedResult> {
  comparable(system, baseline);
  const out: Record<string, PairedResult> = {};
  for (const [name, sys] of Object.entries(system.resamples)) {
    const base = baseline.resamples[name];
    if (!base) continue;
    const deltas = sys.map((v, i) => v - (base[i] as number));
    const observed = (system.values[name] as number) - (baseline.values[name] as number);
    const centre = deltas.reduce((a, b) => a + b, 0) / deltas.length;
    const extreme = deltas.filter((d) => Math.abs(d - centre) >= Math.abs(observed)).length;
    out[name] = { delta: observed, interval: percentileInterval(deltas, confidence), p: (extreme + 1) / (deltas.length + 1) };
  }
  return out;
}
