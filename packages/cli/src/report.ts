import * as fs from 'node:fs';
import * as path from 'node:path';
import { SkdError, type RunEvent } from '@skd/core';
import { writeFileAtomic } from '@skd/models';

interface RunRecord {
  readonly dir: string;
  readonly group: string;
  readonly seed: number;
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
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as { group?: string; run: string; seed: number; finalMetrics: Record<string, number>; meanAcceptanceRate: number | null };
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const events = fs.existsSync(metricsFile)
    ? fs.readFileSync(metricsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunEvent)
    : [];
  return { dir, group: summary.group ?? summary.run, seed: summary.seed, finalMetrics: summary.finalMetrics, meanAcceptanceRate: summary.meanAcceptanceRate, events };
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

/**
 * `skd report`: the results table (mean and std over seeds per group) as Markdown, and a
 * self-contained HTML page whose charts (loss, evaluation metrics and SKD acceptance rate against
 * step) are drawn by an inline script from embedded data.
 */
export function writeReport(runDirs: readonly string[], outDir: string): { markdown: string; html: string; groups: number } {
  if (runDirs.length === 0) throw new SkdError('no finished runs found (folders with summary.json)', { hint: 'point skd report at run folders or a sweep folder' });
  const runs = runDirs.map(loadRun);
  const groups = [...new Set(runs.map((r) => r.group))];
  const metricNames = [...new Set(runs.flatMap((r) => Object.keys(r.finalMetrics)))].filter((m) => m !== 'count').sort();
  const header = ['group', 'seeds', ...metricNames, 'acceptance'];
  const rows = groups.map((group) => {
    const members = runs.filter((r) => r.group === group);
    const cell = (values: number[]) => {
      if (values.length === 0) return '-';
      const { mean, std } = meanStd(values);
      return `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
    };
    return [
      group,
      String(members.length),
      ...metricNames.map((m) => cell(members.flatMap((r) => (r.finalMetrics[m] !== undefined ? [r.finalMetrics[m] as number] : [])))),
      cell(members.flatMap((r) => (r.meanAcceptanceRate !== null ? [r.meanAcceptanceRate] : []))),
    ];
  });
  const markdown = [
    '# skd results',
    '',
    `Runs: ${runs.length} in ${groups.length} group(s); mean ± std over seeds of the final test metrics; acceptance is SKD's mean acceptance rate over training.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    'Charts: report.html (loss, evaluation metrics and acceptance rate against step).',
    '',
  ].join('\n');
  const charts: { id: string; title: string; series: Series[] }[] = [
    { id: 'loss', title: 'training loss', series: curves(runs, (e) => (e.type === 'step' ? [e.step, e.loss] : undefined)) },
    { id: 'acceptance', title: 'SKD acceptance rate', series: curves(runs, (e) => (e.type === 'step' && e.sampler['acceptanceRate'] !== undefined ? [e.step, e.sampler['acceptanceRate']] : undefined)) },
    ...[...new Set(runs.flatMap((r) => r.events.flatMap((e) => (e.type === 'eval' ? Object.keys(e.metrics) : []))))]
      .filter((m) => m !== 'count')
      .sort()
      .map((metric) => ({ id: `eval-${metric}`, title: `evaluation: ${metric}`, series: curves(runs, (e) => (e.type === 'eval' && e.metrics[metric] !== undefined ? [e.step, e.metrics[metric] as number] : undefined)) })),
  ].filter((c) => c.series.length > 0);
  const html = renderHtml(markdown, header, rows, charts);
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'report.md'), markdown);
  writeFileAtomic(path.join(outDir, 'report.html'), html);
  return { markdown, html, groups: groups.length };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

function renderHtml(_markdown: string, header: string[], rows: string[][], charts: { id: string; title: string; series: Series[] }[]): string {
  const table = `<table><thead><tr>${header.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
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
