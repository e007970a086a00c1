#!/usr/bin/env node
// The compact paper table: one row per method, one column per task and data size, each cell the
// mean ± std over seeds of one final test metric, read from runs/paper-table/<task>/*/summary.json.
// Prints Markdown: the task metric, then reference perplexity, then teacher top-25 acceptance.
// Usage: node experiments/paper-table/summary.cjs [runs/paper-table]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { findRuns, meanStd } = require('@skd/cli'); // built by tools/setup.sh

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '../../runs/paper-table'));
const tasks = [
  ['arithmetic', 'exactMatch', 'exact match'],
  ['instructions', 'passRate', 'pass rate'],
  ['translation', 'chrf', 'chrF'],
  ['summarization', 'rougeL', 'ROUGE-L'],
];
const sizes = ['1k', '100'];
const methods = ['supervised-ft', 'supervised-kd', 'seqkd', 'on-policy', 'gkd', 'imitkd', 'distillm', 'skd'];

const runs = tasks.flatMap(([task]) =>
  findRuns([path.join(root, task)]).flatMap((dir) => {
    const match = /^method-(.+)__data-(.+)__seed-(\d+)$/.exec(path.basename(dir));
    return match ? [{ task, method: match[1], size: match[2], metrics: JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')).finalMetrics }] : [];
  }),
);
if (runs.length === 0) {
  console.error(`no finished runs under ${root}: run bash experiments/paper-table/run.sh first`);
  process.exit(1);
}

function cell(values, digits) {
  if (values.length === 0) return '-';
  const { mean, std } = meanStd(values);
  return values.length === 1 ? mean.toFixed(digits) : `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
}

function table(title, metricOf, digits, better) {
  const columns = tasks.flatMap(([task, , label]) => sizes.map((size) => ({ task, size, label: `${task} ${size} (${metricOf(task, label)[1]})` })));
  const lines = [`**${title}** (${better}; mean ± std over seeds)`, '', `| method | ${columns.map((c) => c.label).join(' | ')} |`, `|---|${columns.map(() => '---').join('|')}|`];
  for (const method of methods) {
    const cells = columns.map(({ task, size }) => {
      const key = metricOf(task)[0];
      return cell(runs.filter((r) => r.task === task && r.size === size && r.method === method && r.metrics[key] !== undefined).map((r) => r.metrics[key]), digits);
    });
    lines.push(`| ${method} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const taskMetric = (task) => {
  const entry = tasks.find(([t]) => t === task);
  return [entry[1], entry[2]];
};
console.log(table('Task metric', taskMetric, 3, 'higher is better; exact match and pass rate are fractions, chrF and ROUGE-L are 0-100'));
console.log();
console.log(table('Reference perplexity', () => ['perplexity', 'ppl'], 2, 'lower is better'));
console.log();
console.log(table('Teacher top-25 acceptance of the greedy output', () => ['teacherAcceptance', 'acc'], 3, 'higher is better'));
console.log();
console.log(`${runs.length} runs from ${path.relative(process.cwd(), root) || "."}`);
