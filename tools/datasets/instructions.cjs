#!/usr/bin/env node
// Verifiable instructions (sort, reverse, count, format, compute). Each record carries a "check"
// the instruction-checks evaluator applies to the model's output. Run: node tools/datasets/instructions.cjs
const { Rng, writeSplits } = require('./common.cjs');

const WORDS = ['apple', 'river', 'garden', 'planet', 'window', 'silver', 'forest', 'candle', 'rocket', 'yellow', 'market', 'pencil'];

const TASKS = [
  (rng) => {
    const xs = Array.from({ length: 3 + rng.int(4) }, () => 1 + rng.int(99));
    const desc = rng.bernoulli(0.5);
    const sorted = [...xs].sort((a, b) => (desc ? b - a : a - b)).map(String);
    return { prompt: `Sort these numbers in ${desc ? 'descending' : 'ascending'} order, separated by commas: ${xs.join(', ')}`, response: sorted.join(', '), check: { type: 'list', expected: sorted }, task: 'sort' };
  },
  (rng) => {
    const w = WORDS[rng.int(WORDS.length)];
    const r = [...w].reverse().join('');
    return { prompt: `Write the word "${w}" backwards.`, response: r, check: { type: 'exact', expected: r }, task: 'reverse' };
  },
  (rng) => {
    const w = WORDS[rng.int(WORDS.length)];
    const letter = w[rng.int(w.length)];
    const n = [...w].filter((c) => c === letter).length;
    return { prompt: `How many times does the letter "${letter}" appear in "${w}"? Answer with a number.`, response: String(n), check: { type: 'number', expected: n }, task: 'count' };
  },
  (rng) => {
    const w = WORDS[rng.int(WORDS.length)];
    const upper = rng.bernoulli(0.5);
    const out = upper ? w.toUpperCase() : w[0].toUpperCase() + w.slice(1);
    return { prompt: upper ? `Write "${w}" in capital letters.` : `Capitalize the first letter of "${w}".`, response: out, check: { type: 'exact', expected: out }, task: 'format' };
  },
  (rng) => {
    const a = 2 + rng.int(20);
    const b = 2 + rng.int(9);
    const c = 1 + rng.int(30);
    const value = a * b + c;
    return { prompt: `Compute ${a} * ${b} + ${c}. Answer with a number.`, response: String(value), check: { type: 'number', expected: value }, task: 'compute' };
  },
  (rng) => {
    const y = 2000 + rng.int(30);
    const m = 1 + rng.int(12);
    const d = 1 + rng.int(28);
    const pad = (x) => String(x).padStart(2, '0');
    const out = `${pad(d)}/${pad(m)}/${y}`;
    return { prompt: `Rewrite the date ${y}-${pad(m)}-${pad(d)} as DD/MM/YYYY.`, response: out, check: { type: 'exact', expected: out }, task: 'format-date' };
  },
];

const seed = Number((process.argv.find((a) => a.startsWith('--seed=')) ?? '=2024').split('=')[1]);
const rng = Rng.create(seed).fork('instructions');
const seen = new Set();
const make = (n) => {
  const rows = [];
  while (rows.length < n) {
    const row = TASKS[rng.int(TASKS.length)](rng);
    if (seen.has(row.prompt)) continue;
    seen.add(row.prompt);
    rows.push(row);
  }
  return rows;
};
writeSplits('instructions', { train: make(1000), eval: make(200), test: make(200) });
