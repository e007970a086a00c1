#!/usr/bin/env node
// The new methods beside the paper table's SKD and on-policy KD, on the cells they ran on: the task metric
// (mean ± std over seeds [95% bootstrap interval over the test examples, seeds averaged]), and paired
// bootstrap tests of each new method against SKD and against on-policy KD (same seeds, same test examples).
// Reads runs/new-methods/<task>/ and runs/paper-table/<task>/ (restored from their archives by run.sh).
// Usage: node experiments/new-methods/summary.cjs [runs]
'use strict';
const path = require('node:path');
const { findRuns, groupScores, loadRun, meanStd, pairedComparisons } = require('@skd/report'); // built by tools/setup.sh
const { intervals } = require('@skd/evaluators');

const runsRoot = path.resolve(process.argv[2] ?? path.join(__dirname, '../../runs'));
const cells = [
  { task: 'arithmetic', size: '1k', metric: 'exactMatch', label: 'arithmetic 1k (exact match)' },
  { task: 'instructions', size: '100', metric: 'passRate', label: 'instructions 100 (pass rate)' },
];
const baselines = ['on-policy', 'skd'];
const added = ['taid', 'minillm'];

const runsOf = (task, size) =>
  ['paper-table', 'new-methods'].flatMap((table) =>
    findRuns([path.join(runsRoot, table, task)]).flatMap((dir) => {
      const match = /^method-(.+?)__data-([^_]+)__seed-(\d+)$/.exec(path.basename(dir));
      return match && match[2] === size && [...baselines, ...added].includes(match[1]) ? [{ method: match[1], record: loadRun(dir) }] : [];
    }),
  );

const lines = ['| method | ' + cells.map((c) => c.label).join(' | ') + ' |', `|---|${cells.map(() => '---').join('|')}|`];
const byCell = cells.map((c) => ({ ...c, runs: runsOf(c.task, c.size) }));
for (const method of [...baselines, ...added]) {
  const row = byCell.map(({ runs, metric }) => {
    const members = runs.filter((r) => r.method === method);
    if (members.length === 0) return '-';
    const values = members.map((r) => r.record.finalMetrics[metric]).filter((v) => v !== undefined);
    const { mean, std } = meanStd(values);
    const scores = groupScores(members.map((r) => r.record));
    const range = scores && intervals(scores)[metric];
    return `${mean.toFixed(3)} ± ${std.toFixed(3)}${range ? ` [${range[0].toFixed(3)}, ${range[1].toFixed(3)}]` : ''} (${members.length} seeds)`;
  });
  lines.push(`| ${method} | ${row.join(' | ')} |`);
}
lines.push('', '**Paired bootstrap** (Δ = new method − baseline, seeds averaged; two-sided p, floor 1/1001)', '');
lines.push('| comparison | ' + cells.map((c) => c.label).join(' | ') + ' |', `|---|${cells.map(() => '---').join('|')}|`);
for (const method of added) {
  for (const baseline of baselines) {
    const row = byCell.map(({ runs, metric }) => {
      const records = runs.filter((r) => r.method === method || r.method === baseline).map((r) => r.record);
      const c = pairedComparisons(records, { axis: 'method', value: method }).find((x) => x.metric === metric);
      return c ? `${c.delta >= 0 ? '+' : ''}${c.delta.toFixed(3)} (p ${c.p.toFixed(3)})` : '-';
    });
    lines.push(`| ${method} vs ${baseline} | ${row.join(' | ')} |`);
  }
}
console.log(lines.join('\n'));
