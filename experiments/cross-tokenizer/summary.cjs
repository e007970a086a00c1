#!/usr/bin/env node
// Distillation across tokenizers on arithmetic: per method, the test exact match (mean ± std over seeds
// [95% bootstrap interval over the test problems, seeds averaged]), the test perplexity, SKD's acceptance,
// and paired bootstrap tests of each method against continued SFT and against the
// starting student (same seeds, same test problems). Reads runs/cross-tokenizer/arithmetic/ (run.sh restores
// the archives) and runs/cross-tokenizer/starting-student/ (run.sh's skd eval of the starting student).
// Usage: node experiments/cross-tokenizer/summary.cjs [runs] [cell]   (cell: arithmetic, the default, or
// another sweep of this folder, e.g. arithmetic-lr1e-4, whose runs are in runs/cross-tokenizer/<cell>).
// Rows: every method the cell ran, the known ones in the order below, others after them by name.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { findRuns, groupScores, loadRun, meanStd, pairedComparisons } = require('@skd/report'); // built by tools/setup.sh
const { intervals } = require('@skd/evaluators');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '../../runs'), 'cross-tokenizer', process.argv[3] ?? 'arithmetic');
const order = ['sft', 'uld', 'gold', 'gold-one-to-one', 'alm', 'skd', 'skd-alm', 'seqkd'];
const runs = findRuns([root]).flatMap((dir) => {
  const match = /^method-(.+?)__seed-(\d+)$/.exec(path.basename(dir));
  return match ? [{ method: match[1], dir, record: loadRun(dir) }] : [];
});
const rank = (method) => (order.includes(method) ? order.indexOf(method) : order.length);
const methods = [...new Set(runs.map((r) => r.method))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
/** The mean of a sampler statistic over a run's steps (SKD's acceptance), from its metrics. */
function stepMean(dir, key) {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return undefined;
  const values = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"type":"step"'))
    .map((l) => JSON.parse(l).sampler?.[key])
    .filter((v) => typeof v === 'number');
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
}
const fmt = (values, digits = 3) => {
  const { mean, std } = meanStd(values);
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
};
const lines = ['| method | exact match | perplexity | acceptance (student tokens / teacher tokens) | seeds |', '|---|---|---|---|---|'];
// The starting student on the same test problems (run.sh evaluates it with skd eval).
const starting = path.join(root, '..', 'starting-student');
if (fs.existsSync(path.join(starting, 'summary.json'))) {
  const record = loadRun(starting);
  const scores = groupScores([record]);
  const range = scores && intervals(scores)['exactMatch'];
  const exact = `${record.finalMetrics['exactMatch'].toFixed(3)}${range ? ` [${range[0].toFixed(3)}, ${range[1].toFixed(3)}]` : ''}`;
  lines.push(`| starting student | ${exact} | ${record.finalMetrics['perplexity'].toFixed(3)} | - | - |`);
}
for (const method of methods) {
  const members = runs.filter((r) => r.method === method);
  if (members.length === 0) continue;
  const scores = groupScores(members.map((r) => r.record));
  const range = scores && intervals(scores)['exactMatch'];
  const exact = `${fmt(members.map((r) => r.record.finalMetrics['exactMatch']))}${range ? ` [${range[0].toFixed(3)}, ${range[1].toFixed(3)}]` : ''}`;
  const perplexity = fmt(members.map((r) => r.record.finalMetrics['perplexity']));
  const accepted = members.map((r) => stepMean(r.dir, 'acceptanceRate')).filter((v) => v !== undefined);
  const teacher = members.map((r) => stepMean(r.dir, 'teacherAcceptanceRate')).filter((v) => v !== undefined);
  const acceptance = method.startsWith('skd') && accepted.length ? `${fmt(accepted)} / ${fmt(teacher)}` : '-';
  lines.push(`| ${method} | ${exact} | ${perplexity} | ${acceptance} | ${members.length} |`);
}
lines.push('', '**Paired bootstrap** (Δ = method − baseline exact match, seeds averaged; two-sided p, floor 1/1001)', '');
lines.push('| method | Δ vs continued SFT [95% interval] (p) | Δ vs the starting student [95% interval] (p) |', '|---|---|---|');
const startingRecord = fs.existsSync(path.join(starting, 'summary.json')) ? [loadRun(starting)] : [];
const cell = (c) =>
  c ? `${c.delta >= 0 ? '+' : ''}${c.delta.toFixed(3)} [${c.interval[0].toFixed(3)}, ${c.interval[1].toFixed(3)}] (p ${c.p.toFixed(3)})` : '-';
for (const method of methods) {
  const records = [...runs.filter((r) => r.method === method || r.method === 'sft').map((r) => r.record), ...startingRecord];
  const comparisons = pairedComparisons(records, { axis: 'method', value: method }).filter((x) => x.metric === 'exactMatch');
  const sft = comparisons.find((c) => c.baseline === 'method-sft');
  const start = comparisons.find((c) => c.baseline.startsWith('baseline-'));
  lines.push(`| ${method} | ${method === 'sft' ? '-' : cell(sft)} | ${cell(start)} |`);
}
console.log(lines.join('\n'));
