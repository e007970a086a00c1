#!/usr/bin/env node
// The compact paper table, read from runs/paper-table/<task>/*/summary.json (and the bootstrap scores
// each run wrote): one row per method, one column per task and data size. Prints Markdown:
//   1. the task metric: mean ± std over seeds, and its 95% bootstrap interval over test examples
//      (seeds averaged within each resample), with the teacher and the initial students as rows;
//   2. paired bootstrap tests of SKD against every other method on the same data (Δ and p);
//   3. SKD's acceptance rate over training (quarters of the steps);
//   4. reference perplexity and the teacher's top-25 acceptance of the greedy outputs;
//   5. what the runs cost: median minutes per run of each method and task (summary.json's seconds), the
//      time of the finished runs, and the whole table projected from those medians.
// Usage: node experiments/paper-table/summary.cjs [runs/paper-table]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { findRuns, groupScores, loadRun, meanStd, pairedComparisons } = require('@skd/report'); // built by tools/setup.sh
const { intervals } = require('@skd/evaluators');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '../../runs/paper-table'));
const tasks = [
  ['arithmetic', 'exactMatch', 'exact match'],
  ['instructions', 'passRate', 'pass rate'],
  ['translation', 'chrf', 'chrF'],
  ['summarization', 'rougeL', 'ROUGE-L'],
];
const sizes = ['1k', '100'];
const knownMethods = ['supervised-ft', 'supervised-kd', 'seqkd', 'on-policy', 'gkd', 'imitkd', 'distillm', 'skd'];

// Run folders: method-<m>__data-<size>__seed-<s> (the sweep), method-initial__data-<size> and teacher (skd eval --out).
const runs = tasks.flatMap(([task]) =>
  findRuns([path.join(root, task)]).flatMap((dir) => {
    const name = path.basename(dir);
    const match = /^method-(.+?)__data-([^_]+)(?:__seed-(\d+))?$/.exec(name);
    if (match)
      return [
        { task, method: match[1], size: match[2], record: loadRun(dir), seconds: JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')).seconds },
      ];
    if (name === 'teacher') return sizes.map((size) => ({ task, method: 'teacher', size, record: loadRun(dir) }));
    return [];
  }),
);
if (runs.length === 0) {
  console.error(`no finished runs under ${root}: run bash experiments/paper-table/run.sh first`);
  process.exit(1);
}
// The table's methods, then any other grid point the runs hold (another table's SKD variants, say), by name.
const methods = [
  ...knownMethods,
  ...[...new Set(runs.map((r) => r.method))].filter((m) => !knownMethods.includes(m) && m !== 'teacher' && m !== 'initial').sort(),
];

const columns = tasks.flatMap(([task, metric, label]) => sizes.map((size) => ({ task, size, metric, label: `${task} ${size} (${label})` })));
const select = (task, size, method) => runs.filter((r) => r.task === task && r.size === size && r.method === method);
// Tables of the task metric name it in each column; the others (perplexity, acceptance) name only the task and size.
const header = (first, withMetric = true) => [
  `| ${first} | ${columns.map((c) => (withMetric ? c.label : `${c.task} ${c.size}`)).join(' | ')} |`,
  `|---|${columns.map(() => '---').join('|')}|`,
];

function spread(values, digits) {
  if (values.length === 0) return '-';
  const { mean, std } = meanStd(values);
  return values.length === 1 ? mean.toFixed(digits) : `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
}

/** mean ± std over seeds, then the bootstrap interval of the seed-averaged metric. */
function taskCell(members, metric) {
  const values = members.flatMap((r) => (r.record.finalMetrics[metric] !== undefined ? [r.record.finalMetrics[metric]] : []));
  if (values.length === 0) return '-';
  const digits = metric === 'chrf' || metric === 'rougeL' ? 1 : 3;
  const scores = groupScores(members.map((r) => r.record));
  const range = scores && intervals(scores)[metric];
  return `${spread(values, digits)}${range ? ` [${range[0].toFixed(digits)}, ${range[1].toFixed(digits)}]` : ''}`;
}

const lines = [];
lines.push(
  '**Task metric** (higher is better; exact match and pass rate are fractions, chrF and ROUGE-L 0-100): mean ± std over seeds [95% bootstrap interval over the test examples, seeds averaged]',
  '',
);
lines.push(...header('model'));
for (const method of ['teacher', 'initial', ...methods]) {
  const label = method === 'initial' ? 'initial student' : method;
  const cells = columns.map(({ task, size, metric }) => taskCell(select(task, size, method), metric));
  if (cells.some((c) => c !== '-')) lines.push(`| ${label} | ${cells.join(' | ')} |`);
}
lines.push('');

// Paired tests: SKD's group against every other method's on the same task and data size.
lines.push('**SKD against each other method**, paired bootstrap on the task metric (Δ = SKD − method, seeds averaged; two-sided p, floor 1/1001)', '');
lines.push(...header('SKD vs'));
const comparisons = new Map();
for (const [task] of tasks) {
  const records = runs.filter((r) => r.task === task && r.method !== 'teacher').map((r) => r.record);
  for (const c of pairedComparisons(records, { axis: 'method', value: 'skd' })) comparisons.set(`${task}|${c.baseline}|${c.metric}`, c);
}
for (const method of ['initial', ...methods.filter((m) => m !== 'skd')]) {
  const cells = columns.map(({ task, size, metric }) => {
    const c = comparisons.get(`${task}|method-${method}__data-${size}|${metric}`);
    if (!c) return '-';
    const digits = metric === 'chrf' || metric === 'rougeL' ? 1 : 3;
    return `${c.delta >= 0 ? '+' : ''}${c.delta.toFixed(digits)} (p ${c.p.toFixed(3)})`;
  });
  if (cells.some((c) => c !== '-')) lines.push(`| ${method === 'initial' ? 'initial student' : method} | ${cells.join(' | ')} |`);
}
lines.push('');

// SKD's acceptance rate per quarter of training, mean over seeds.
lines.push("**SKD's acceptance rate over training** (mean over each quarter of the steps, then over seeds)", '');
const skdMethods = methods.filter((m) => m === 'skd' || m.startsWith('skd-'));
lines.push(`| ${skdMethods.length > 1 ? 'method, ' : ''}task, data | 0-25% | 25-50% | 50-75% | 75-100% |`, '|---|---|---|---|---|');
for (const method of skdMethods)
  for (const { task, size } of columns) {
    const quarters = select(task, size, method).map(({ record }) => {
      const points = record.events.filter((e) => e.type === 'step' && e.sampler.acceptanceRate !== undefined);
      const last = Math.max(...points.map((e) => e.step));
      return [0, 1, 2, 3].map((q) => {
        const inside = points.filter((e) => Math.min(3, Math.floor(((e.step - 1) * 4) / last)) === q).map((e) => e.sampler.acceptanceRate);
        return inside.reduce((a, b) => a + b, 0) / Math.max(1, inside.length);
      });
    });
    const label = `${skdMethods.length > 1 ? `${method}, ` : ''}${task} ${size}`;
    if (quarters.length > 0) lines.push(`| ${label} | ${[0, 1, 2, 3].map((q) => meanStd(quarters.map((r) => r[q])).mean.toFixed(3)).join(' | ')} |`);
  }
lines.push('');

function plainTable(title, metric, digits) {
  lines.push(title, '', ...header('model', false));
  for (const method of ['teacher', 'initial', ...methods]) {
    const cells = columns.map(({ task, size }) =>
      spread(
        select(task, size, method).flatMap((r) => (r.record.finalMetrics[metric] !== undefined ? [r.record.finalMetrics[metric]] : [])),
        digits,
      ),
    );
    if (cells.some((c) => c !== '-')) lines.push(`| ${method === 'initial' ? 'initial student' : method} | ${cells.join(' | ')} |`);
  }
  lines.push('');
}
plainTable('**Reference perplexity** (lower is better; mean ± std over seeds)', 'perplexity', 2);
plainTable('**Teacher top-25 acceptance of the greedy output** (higher is better)', 'teacherAcceptance', 3);
// What the runs cost, each on one native thread beside another lane (run.sh with JOBS=2).
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
lines.push('**What the runs cost** (minutes per run, median over the finished runs of both data sizes; each run on one native thread beside another lane)', '');
lines.push(`| method | ${tasks.map(([task]) => task).join(' | ')} |`, `|---|${tasks.map(() => '---').join('|')}|`);
const perRun = new Map();
for (const method of methods) {
  const cells = tasks.map(([task]) => {
    const times = runs.filter((r) => r.task === task && r.method === method && typeof r.seconds === 'number').map((r) => r.seconds);
    if (times.length === 0) return '-';
    perRun.set(`${task}|${method}`, median(times));
    return `${(median(times) / 60).toFixed(1)}${times.length < sizes.length * 3 ? ` (${times.length} runs)` : ''}`;
  });
  lines.push(`| ${method} | ${cells.join(' | ')} |`);
}
const runsPerMethod = sizes.length * 3;
const totals = tasks.map(([task]) => {
  const finished = runs.filter((r) => r.task === task && methods.includes(r.method) && typeof r.seconds === 'number');
  const known = methods.filter((m) => perRun.has(`${task}|${m}`));
  const projected = known.reduce((sum, m) => sum + perRun.get(`${task}|${m}`) * runsPerMethod, 0);
  return {
    finished: finished.length,
    hours: finished.reduce((sum, r) => sum + r.seconds, 0) / 3600,
    projected: projected / 3600,
    complete: known.length === methods.length,
  };
});
lines.push(`| finished runs: count, lane-hours | ${totals.map((t) => `${t.finished}, ${t.hours.toFixed(2)} h`).join(' | ')} |`);
lines.push(
  `| all ${methods.length * runsPerMethod} runs, projected (lane-hours) | ${totals.map((t) => (t.complete ? t.projected.toFixed(2) : `≥ ${t.projected.toFixed(2)}`)).join(' | ')} |`,
);
const projectedAll = totals.reduce((sum, t) => sum + t.projected, 0);
lines.push(
  '',
  `Whole table, projected: ${totals.every((t) => t.complete) ? '' : 'at least '}${projectedAll.toFixed(1)} lane-hours, ${(projectedAll / 2).toFixed(1)} hours of wall time with JOBS=2 (plus the teacher and initial-student evaluations).`,
  '',
);
lines.push(`${runs.filter((r) => r.method !== 'teacher').length} runs from ${path.relative(process.cwd(), root) || '.'}`);
console.log(lines.join('\n'));
