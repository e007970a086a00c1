import * as fs from 'node:fs';
import * as path from 'node:path';
import { SkdError, type RunEvent } from '@skd/core';
import { writeFileAtomic } from '@skd/models';

interface RunRecord {
  readonly dir: string;
  readonly group: string;
  readonly seed: number;
  readonly divergence: string | undefined;
  readonly finalMetrics: Record<string, number>;
  readonly meanAcceptanceRate: number | null;
  readonly events: RunEvent[];
}

/** Run folders (holding summary.json) under the given paths, up to three levels deep. */
export function findRuns(paths: readonly string[]): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (fs.existsSync(path.join(dir, 'summary.json'))) found.push(dir);
    else if (depth < 3 && fs.existsSync(dir) && fs.statSync(dir).isDirectory()) {
      for (const name of fs.readdirSync(dir).sort()) {
        const child = path.join(dir, name);
        if (fs.statSync(child).isDirectory()) visit(child, depth + 1);
      }
    }
  };
  paths.forEach((p) => visit(path.resolve(p), 0));
  return found;
}

function loadRun(dir: string): RunRecord {
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as {
    group?: string;
    run: string;
    seed: number;
    divergence?: string;
    finalMetrics: Record<string, number>;
    meanAcceptanceRate: number | null;
  };
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const events = fs.existsSync(metricsFile)
    ? fs.readFileSync(metricsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunEvent)
    : [];
  return { dir, group: summary.group ?? summary.run, seed: summary.seed, divergence: summary.divergence, finalMetrics: summary.finalMetrics, meanAcceptanceRate: summary.meanAcceptanceRate, events };
}

export function meanStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, std };
}

type Series = { name: string; points: [number, number][] };

/** Curves per group: each step's value averaged over the group's seeds. */
function curves(runs: readonly RunRecord[], pick: (e: RunEvent) => [number, number] | undefined): Series[] {
  const byGroup = new Map<string, Map<number, number[]>>();
  for (const run of runs) {
    for (const e of run.events) {
      const point = pick(e);
      if (!point) continue;
      const steps = byGroup.get(run.group) ?? new Map<number, number[]>();
      steps.set(point[0], [...(steps.get(point[0]) ?? []), point[1]]);
      byGroup.set(run.group, steps);
    }
  }
  return [...byGroup].map(([name, steps]) => ({ name, points: [...steps].sort((a, b) => a[0] - b[0]).map(([s, vs]) => [s, vs.reduce((a, b) => a + b, 0) / vs.length] as [number, number]) }));
}

/** The runs under one heading of a report (e.g. one task's sweep), with their own table and charts. */
export interface ReportSection {
  readonly title: string;
  readonly runDirs: readonly string[];
}

const PHASES = 4;

/**
 * Each run's mean SKD acceptance rate in each quarter of its training steps, then mean and std over
 * the group's seeds: the curriculum the method claims (acceptance rising as the student improves).
 */
function acceptanceByPhase(members: readonly RunRecord[]): number[][] | undefined {
  const perRun = members.flatMap((run) => {
    const points = run.events.flatMap((e) => (e.type === 'step' && e.sampler['acceptanceRate'] !== undefined ? [[e.step, e.sampler['acceptanceRate']] as const] : []));
    if (points.length < PHASES) return [];
    const last = Math.max(...points.map(([step]) => step));
    const phases = Array.from({ length: PHASES }, (_, k) => points.filter(([step]) => Math.min(PHASES - 1, Math.floor(((step - 1) * PHASES) / last)) === k).map(([, v]) => v));
    return phases.every((p) => p.length > 0) ? [phases.map((p) => p.reduce((a, b) => a + b, 0) / p.length)] : [];
  });
  return perRun.length > 0 ? Array.from({ length: PHASES }, (_, k) => perRun.map((r) => r[k] as number)) : undefined;
}

/** Mean ± std over seeds; a single seed has no spread to show, so it prints the value alone. */
const cell = (values: readonly number[]) => {
  if (values.length === 0) return '-';
  const { mean, std } = meanStd(values);
  return values.length === 1 ? mean.toFixed(3) : `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
};

function sectionTables(runs: readonly RunRecord[]): { header: string[]; rows: string[][]; markdown: string[] } {
  const groups = [...new Set(runs.map((r) => r.group))];
  const metricNames = [...new Set(runs.flatMap((r) => Object.keys(r.finalMetrics)))].filter((m) => m !== 'count').sort();
  // validationLoss is each run's own divergence on the references, so the table says which one it is.
  const header = ['group', 'seeds', 'divergence', ...metricNames, 'acceptance'];
  const rows = groups.map((group) => {
    const members = runs.filter((r) => r.group === group);
    return [
      group,
      String(members.length),
      [...new Set(members.map((r) => r.divergence ?? '?'))].join(', '),
      ...metricNames.map((m) => cell(members.flatMap((r) => (r.finalMetrics[m] !== undefined ? [r.finalMetrics[m] as number] : [])))),
      cell(members.flatMap((r) => (r.meanAcceptanceRate !== null ? [r.meanAcceptanceRate] : []))),
    ];
  });
  const phaseRows = groups.flatMap((group) => {
    const phases = acceptanceByPhase(runs.filter((r) => r.group === group));
    return phases ? [[group, ...phases.map(cell)]] : [];
  });
  const table = (h: readonly string[], body: readonly string[][]) => [`| ${h.join(' | ')} |`, `|${h.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)];
  const markdown = [...table(header, rows), ''];
  if (phaseRows.length > 0) {
    markdown.push('Acceptance rate over training (mean over each quarter of the steps, then mean ± std over seeds):', '');
    markdown.push(...table(['group', 'steps 0-25%', '25-50%', '50-75%', '75-100%'], phaseRows), '');
  }
  return { header, rows, markdown };
}

function sectionCharts(runs: readonly RunRecord[], prefix: string): Chart[] {
  return [
    { id: `${prefix}loss`, title: `${prefix}training loss`, series: curves(runs, (e) => (e.type === 'step' ? [e.step, e.loss] : undefined)) },
    { id: `${prefix}acceptance`, title: `${prefix}SKD acceptance rate`, series: curves(runs, (e) => (e.type === 'step' && e.sampler['acceptanceRate'] !== undefined ? [e.step, e.sampler['acceptanceRate']] : undefined)) },
    ...[...new Set(runs.flatMap((r) => r.events.flatMap((e) => (e.type === 'eval' ? Object.keys(e.metrics) : []))))]
      .filter((m) => m !== 'count')
      .sort()
      .map((metric) => ({
        id: `${prefix}eval-${metric}`,
        title: `${prefix}evaluation: ${metric}`,
        series: curves(runs, (e) => (e.type === 'eval' && e.metrics[metric] !== undefined ? [e.step, e.metrics[metric] as number] : undefined)),
      })),
  ].filter((c) => c.series.length > 0);
}

type Chart = { id: string; title: string; series: Series[] };

/**
 * `skd report`: per section (one per path given), the results table (mean and std over seeds per
 * group) and SKD's acceptance rate per quarter of training, as Markdown; and a self-contained HTML
 * page whose charts (loss, evaluation metrics and acceptance rate against step) are drawn by an
 * inline script from embedded data. `command` is printed at the top, so a committed report says how
 * it was made.
 */
export function writeReport(sections: readonly ReportSection[], outDir: string, options: { readonly command?: string } = {}): { markdown: string; html: string; groups: number; runs: number } {
  const loaded = sections.filter((s) => s.runDirs.length > 0).map((s) => ({ title: s.title, runs: s.runDirs.map(loadRun) }));
  if (loaded.length === 0) throw new SkdError('no finished runs found (folders with summary.json)', { hint: 'point skd report at run folders or a sweep folder' });
  const total = loaded.reduce((n, s) => n + s.runs.length, 0);
  const groups = loaded.reduce((n, s) => n + new Set(s.runs.map((r) => r.group)).size, 0);
  const titled = loaded.length > 1;
  const parts = loaded.map((s) => ({ ...s, ...sectionTables(s.runs), charts: sectionCharts(s.runs, titled ? `${s.title}: ` : '') }));
  const markdown = [
    '# skd results',
    '',
    ...(options.command ? [`Produced by \`${options.command}\`.`, ''] : []),
    `Runs: ${total} in ${groups} group(s); mean ± std over seeds of the final test metrics; acceptance is SKD's mean acceptance rate over training.`,
    '',
    ...parts.flatMap((p) => [...(titled ? [`## ${p.title}`, ''] : []), ...p.markdown]),
    'Charts: report.html (loss, evaluation metrics and acceptance rate against step).',
    '',
  ].join('\n');
  const html = renderHtml(parts.map((p) => ({ title: titled ? p.title : undefined, header: p.header, rows: p.rows })), parts.flatMap((p) => p.charts));
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'report.md'), markdown);
  writeFileAtomic(path.join(outDir, 'report.html'), html);
  return { markdown, html, groups, runs: total };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

function renderHtml(tables: readonly { title: string | undefined; header: readonly string[]; rows: readonly string[][] }[], charts: readonly Chart[]): string {
  const table = tables
    .map(
      ({ title, header, rows }) =>
        `${title ? `<h2>${escape(title)}</h2>` : ''}<table><thead><tr>${header.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`,
    )
    .join('\n');
  const data = JSON.stringify(charts).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>skd report</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}svg{border:1px solid #eee;margin:1em 0}.legend{font-size:12px}</style>
</head><body>
<h1>skd results</h1>
${table}
<div id="charts"></div>
<script>
const charts = ${data};
const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f'];
const NS = 'http://www.w3.org/2000/svg';
for (const chart of charts) {
  const W = 640, H = 300, L = 56, R = 160, T = 28, B = 36;
  const all = chart.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => L + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0)) * (H - T - B);
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('data-chart', chart.id);
  const text = (x, y, s, anchor) => { const t = document.createElementNS(NS, 'text'); t.setAttribute('x', x); t.setAttribute('y', y); t.setAttribute('font-size', '12'); if (anchor) t.setAttribute('text-anchor', anchor); t.textContent = s; svg.appendChild(t); };
  text(W / 2, 16, chart.title, 'middle');
  text(L - 4, sy(y1) + 4, y1.toPrecision(3), 'end'); text(L - 4, sy(y0) + 4, y0.toPrecision(3), 'end');
  text(sx(x0), H - 12, 'step ' + x0, 'middle'); text(sx(x1), H - 12, 'step ' + x1, 'middle');
  const axis = document.createElementNS(NS, 'path');
  axis.setAttribute('d', 'M' + L + ' ' + T + 'V' + (H - B) + 'H' + (W - R)); axis.setAttribute('stroke', '#999'); axis.setAttribute('fill', 'none'); svg.appendChild(axis);
  chart.series.forEach((s, i) => {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', s.points.map((p, j) => (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1)).join(''));
    path.setAttribute('stroke', colors[i % colors.length]); path.setAttribute('fill', 'none'); path.setAttribute('stroke-width', '2');
    path.setAttribute('class', 'series'); svg.appendChild(path);
    text(W - R + 8, T + 14 * (i + 1), s.name.slice(0, 24));
    svg.lastChild.setAttribute('fill', colors[i % colors.length]);
  });
  document.getElementById('charts').appendChild(svg);
}
</script>
</body></html>
`;
}
