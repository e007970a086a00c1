#!/usr/bin/env node
// GSM8K-style multi-step word problems with step-by-step solutions ending in "#### <answer>".
// Difficulty: --min-steps/--max-steps (operations per problem, default 2..4) and --max (largest
// starting number); sizes: --train, --eval, --test (default 50000, 300, 300). No prompt appears in
// two splits. Deterministic: the same seed gives the same files. --name writes data/<name> instead
// of data/arithmetic (e.g. a related corpus of easier problems); --exclude=<name>[,<name>] leaves out
// every prompt of those data sets' eval and test splits (a corpus to pre-train students on must not
// hold the task's evaluation problems). Run: node tools/datasets/arithmetic.cjs
const fs = require('node:fs');
const path = require('node:path');
const { DATA, Rng, writeSplits } = require('./common.cjs');

const NAMES = ['Maya', 'Ravi', 'Ana', 'Tom', 'Lena', 'Omar', 'Priya', 'Ken', 'Sara', 'Juan'];
const ITEMS = ['apples', 'stickers', 'marbles', 'books', 'coins', 'pencils', 'cookies', 'stamps'];

/** One operation: a sentence for the question and a step for the solution, applied to the running total. */
const OPERATIONS = [
  (rng, total, who, item) => {
    const bags = 2 + rng.int(4);
    const each = 2 + rng.int(9);
    const added = bags * each;
    return {
      total: total + added,
      question: `${who} buys ${bags} packs of ${each} ${item} each.`,
      steps: [`${bags} packs of ${each} is ${bags} * ${each} = ${added} ${item}.`, `${total} + ${added} = ${total + added}.`],
    };
  },
  (rng, total, who, item) => {
    if (total < 2) return null;
    const given = 1 + rng.int(Math.min(total - 1, 20));
    return { total: total - given, question: `${who} gives away ${given} ${item}.`, steps: [`${total} - ${given} = ${total - given}.`] };
  },
  (rng, total, who, item) => {
    const divisors = [2, 3, 4, 5].filter((d) => total % d === 0 && total / d >= 1);
    if (!divisors.length) return null;
    const d = divisors[rng.int(divisors.length)];
    return {
      total: total / d,
      question: `${who} shares the ${item} equally among ${d} friends and keeps one share.`,
      steps: [`${total} / ${d} = ${total / d}.`],
    };
  },
  (rng, total, who, item) => {
    const found = 1 + rng.int(15);
    return { total: total + found, question: `${who} finds ${found} more ${item}.`, steps: [`${total} + ${found} = ${total + found}.`] };
  },
  (rng, total, who, item) => {
    if (total > 60) return null;
    return { total: total * 2, question: `Then the number of ${item} doubles.`, steps: [`${total} * 2 = ${total * 2}.`] };
  },
];

function problem(rng, minSteps, maxSteps, maxStart) {
  const who = NAMES[rng.int(NAMES.length)];
  const item = ITEMS[rng.int(ITEMS.length)];
  let total = 5 + rng.int(maxStart - 4);
  const question = [`${who} has ${total} ${item}.`];
  const steps = [];
  const count = minSteps + rng.int(maxSteps - minSteps + 1);
  while (steps.length < count) {
    const op = OPERATIONS[rng.int(OPERATIONS.length)](rng, total, who, item);
    if (!op) continue;
    total = op.total;
    question.push(op.question);
    steps.push(op.steps.join(' '));
  }
  question.push(`How many ${item} does ${who} have now?`);
  return { prompt: question.join(' '), response: `${steps.join('\n')}\n#### ${total}`, answer: String(total), steps: count };
}

const text = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];
const arg = (name, fallback) => Number(text(name, fallback));

const rng = Rng.create(arg('seed', 2024)).fork('arithmetic');
const make = (n) => Array.from({ length: n }, () => problem(rng, arg('min-steps', 2), arg('max-steps', 4), arg('max', 50)));
const seen = new Set();
const excluded = text('exclude', '').split(',').filter(Boolean);
for (const name of excluded) {
  for (const split of ['eval', 'test']) {
    const file = path.join(DATA, name, `${split}.jsonl`);
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) if (line.trim()) seen.add(JSON.parse(line).prompt);
  }
}
const unique = (rows) => rows.filter((r) => !seen.has(r.prompt) && seen.add(r.prompt));
// Splits are drawn in order (train, eval, test), each as many unique problems as asked.
const draw = (n) => {
  const rows = [];
  while (rows.length < n) rows.push(...unique(make(n - rows.length)));
  return rows;
};
writeSplits(text('name', 'arithmetic'), { train: draw(arg('train', 50000)), eval: draw(arg('eval', 300)), test: draw(arg('test', 300)) });
