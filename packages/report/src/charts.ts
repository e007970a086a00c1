import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunEvent, StepCompleted } from '@skd/core';

/**
 * The charts of reports and of the dashboard, as data: every chart is a list of rows (one per
 * series, step and split) that `assets/charts.js` draws with Observable Plot in the browser. The
 * numbers are computed here, in Node, so a test can check them without a browser.
 */

/** One point of one series: a step's value averaged over the series' runs (a group's seeds). */
export interface ChartRow {
  readonly series: string;
  readonly step: number;
  readonly value: number;
  /** 95% bootstrap interval (the mean of the runs' bounds), when the evaluator has per-example statistics. */
  readonly low?: number;
  readonly high?: number;
  /** Evaluation charts: which split the point was measured on (eval during training, test at the end). */
  readonly split?: string;
}

export interface Chart {
  readonly id: string;
  readonly title: string;
  /** The y axis label. */
  readonly y: string;
  readonly rows: readonly ChartRow[];
  /** Noisy per-step curves (loss, acceptance): the same rows smoothed, drawn over the raw ones. */
  readonly smoothed?: readonly ChartRow[];
}

/** The runs behind one series: a report's group (its seeds) or one run of the dashboard. */
export interface SeriesRuns {
  readonly series: string;
  readonly events: readonly RunEvent[];
}

type Point = { step: number; value: number; low?: number; high?: number; split?: string };

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Per series and (split, step): values averaged over the series' runs, with the mean of their
 * interval bounds; with `spread`, points without bounds get the range of the series' runs (a group's
 * seeds) as theirs.
 */
function rowsOf(runs: readonly SeriesRuns[], pick: (e: RunEvent) => Point | undefined, spread = false): ChartRow[] {
  const bySeries = new Map<string, Map<string, Point[]>>();
  for (const { series, events } of runs) {
    const points = bySeries.get(series) ?? new Map<string, Point[]>();
    for (const event of events) {
      const point = pick(event);
      if (!point || !Number.isFinite(point.value)) continue;
      const key = `${point.split ?? ''}\u0000${point.step}`;
      points.set(key, [...(points.get(key) ?? []), point]);
    }
    bySeries.set(series, points);
  }
  return [...bySeries].flatMap(([series, points]) =>
    [...points.values()]
      .map((same): ChartRow => {
        const first = same[0] as Point;
        const bounded = same.every((p) => p.low !== undefined && p.high !== undefined);
        const values = same.map((p) => p.value);
        return {
          series,
          step: first.step,
          value: mean(values),
          ...(bounded
            ? { low: mean(same.map((p) => p.low as number)), high: mean(same.map((p) => p.high as number)) }
            : spread && same.length > 1
              ? { low: Math.min(...values), high: Math.max(...values) }
              : {}),
          ...(first.split !== undefined ? { split: first.split } : {}),
        };
      })
      .sort((a, b) => (a.split ?? '').localeCompare(b.split ?? '') || a.step - b.step),
  );
}

/**
 * Debiased exponential moving average (the first points are not pulled towards zero), with a weight
 * that grows with the series' length: a curve of n steps is smoothed over about n/20 of them (at
 * most 0.95, about 20 steps), so 40 steps stay readable and 4000 steps lose their noise.
 */
export function smooth(rows: readonly ChartRow[]): ChartRow[] {
  const out: ChartRow[] = [];
  for (const series of new Set(rows.map((r) => r.series))) {
    const mine = rows.filter((r) => r.series === series);
    const weight = Math.min(0.95, Math.max(0, 1 - 20 / mine.length));
    let average = 0;
    let norm = 0;
    for (const row of mine) {
      average = weight * average + (1 - weight) * row.value;
      norm = weight * norm + (1 - weight);
      out.push({ series, step: row.step, value: average / norm });
    }
  }
  return out;
}

/**
 * Loss and SKD acceptance (raw and smoothed, with the range of a series' runs as its band) and one
 * chart per evaluation metric (with intervals); empty charts left out.
 */
export function buildCharts(runs: readonly SeriesRuns[], prefix = ''): Chart[] {
  const perStep = (id: string, title: string, y: string, pick: (e: StepCompleted) => number | undefined): Chart => {
    const rows = rowsOf(
      runs,
      (e) => {
        const value = e.type === 'step' ? pick(e) : undefined;
        return e.type === 'step' && value !== undefined ? { step: e.step, value } : undefined;
      },
      true,
    );
    return { id: `${prefix}${id}`, title: `${prefix}${title}`, y, rows, smoothed: smooth(rows) };
  };
  const metrics = [...new Set(runs.flatMap((r) => r.events.flatMap((e) => (e.type === 'eval' ? Object.keys(e.metrics) : []))))]
    .filter((m) => m !== 'count')
    .sort();
  return [
    perStep('loss', 'training loss', 'loss', (e) => e.loss),
    perStep('acceptance', 'SKD acceptance rate', 'acceptance rate', (e) => e.sampler['acceptanceRate']),
    ...metrics.map((metric): Chart => ({
      id: `${prefix}eval-${metric}`,
      title: `${prefix}evaluation: ${metric}`,
      y: metric,
      rows: rowsOf(runs, (e) => {
        if (e.type !== 'eval' || e.metrics[metric] === undefined) return undefined;
        const interval = e.intervals?.[metric];
        return { step: e.step, value: e.metrics[metric] as number, split: e.split, ...(interval ? { low: interval[0], high: interval[1] } : {}) };
      }),
    })),
  ].filter((chart) => chart.rows.length > 0);
}

/** The folder of an installed package (its package.json), whatever its `exports` allow. */
function packageRoot(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (
    !fs.existsSync(path.join(dir, 'package.json')) ||
    (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== name
  ) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the folder of ${name}`);
    dir = parent;
  }
  return dir;
}

/** Inline script text must not close its <script> element early. */
const inlineScript = (source: string) => `<script>\n${source.replace(/<\/script/gi, '<\\/script')}\n</script>`;

let scripts: string | undefined;

/**
 * d3, Observable Plot and skd's chart drawing as inline <script> elements, so a page opens offline
 * from a file and never fetches anything.
 */
export function chartScripts(): string {
  scripts ??= [
    path.join(packageRoot('d3'), 'dist', 'd3.min.js'),
    path.join(packageRoot('@observablehq/plot'), 'dist', 'plot.umd.min.js'),
    path.join(__dirname, '..', 'assets', 'charts.js'),
  ]
    .map((file) => inlineScript(fs.readFileSync(file, 'utf8')))
    .join('\n');
  return scripts;
}

/** JSON for an inline script: `<` escaped so no string in the data can end the element. */
export const inlineJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

export const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

export const PAGE_STYLE =
  'body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}' +
  '.charts{display:flex;flex-wrap:wrap;gap:1.5em}figure.chart{margin:0;padding:.5em;border:1px solid #eee}figure.chart h3{font-size:14px;margin:0 0 .5em}' +
  '.scroll{overflow-x:auto;max-width:100%}details{margin:1em 0}summary{cursor:pointer;font-weight:600;margin:.5em 0}' +
  'figure.glance{margin:1em 0}svg.glance{max-width:100%;height:auto}.note{color:#555}';
