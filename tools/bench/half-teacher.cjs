#!/usr/bin/env node
// A frozen teacher held in 16 bits against float32, side by side in one run (`npm run bench:half`):
// what a teacher does in distillation, at pretrained shapes with random weights, each in its own child
// process (tools/bench/pretrained-skd.cjs) so its peak memory is its own:
//   - greedy decoding with the KV cache (the teacher's samples: SeqKD, mixed sampling), batch 1 and 4;
//   - a forward pass over B x T tokens without gradients (scoring a batch);
//   - one cached pass over a block of 6 drafts per row after a prefill (SKD's verification).
// Rounds alternate the dtypes; the medians of the rounds are compared, with their spread.
// Options: --rounds=N (default 3), --only=qwen2.5-0.5b,smollm2-135m, --dtypes=float32,bfloat16,float16.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { cpu, median, table } = require('./harness.cjs');

const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const log = (line) => process.stderr.write(`${line}\n`);

const TASKS = [
  { name: 'greedy, batch 1', args: ['--task=generate', '--batch=1', '--prompt=32', '--new=32'], unit: 'ms/token' },
  { name: 'greedy, batch 4', args: ['--task=generate', '--batch=4', '--prompt=32', '--new=32'], unit: 'ms/token' },
  { name: 'forward, B=4 T=96', args: ['--task=forward', '--B=4', '--T=96'], unit: 'ms' },
  { name: 'verify a block of 6, B=4', args: ['--task=verify', '--B=4', '--prompt=96', '--block=6'], unit: 'ms' },
];

function child(shape, dtype, task) {
  const result = spawnSync(
    process.execPath,
    [path.join(__dirname, 'pretrained-skd.cjs'), `--shape=${shape}`, `--dtype=${dtype}`, '--steps=3', '--warmup=1', ...task.args],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    },
  );
  if (result.status !== 0) throw new Error(`pretrained-skd.cjs ${shape} ${dtype} failed:\n${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

const rounds = Number(option('rounds', 3));
const shapes = option('only', 'smollm2-135m,qwen2.5-0.5b').split(',');
const dtypes = option('dtypes', 'float32,bfloat16,float16').split(',');
const machine = cpu();
log(`CPU: ${machine.model} (${machine.isa}, ${machine.cores} cores)`);
const rows = [];
for (const shape of shapes) {
  for (const task of TASKS) {
    const runs = Object.fromEntries(dtypes.map((d) => [d, []]));
    for (let round = 0; round < rounds; round++) {
      // Alternate the order each round, so a slow minute on a shared core falls on every side.
      for (const dtype of round % 2 ? [...dtypes].reverse() : dtypes) {
        const r = child(shape, dtype, task);
        runs[dtype].push(r);
        log(`${shape} ${task.name} ${dtype}: ${r.ms.toFixed(1)} ${task.unit} (peak RSS ${r.maxRssGB.toFixed(2)} GB)`);
      }
    }
    const base = median(runs[dtypes[0]].map((r) => r.ms));
    for (const dtype of dtypes) {
      const ms = runs[dtype].map((r) => r.ms);
      rows.push({
        shape,
        task: task.name,
        dtype,
        ms: median(ms),
        spread: [Math.min(...ms), Math.max(...ms)],
        unit: task.unit,
        speedVsFloat32: base / median(ms),
        peakRssGB: median(runs[dtype].map((r) => r.maxRssGB)),
      });
    }
  }
}
console.log(`CPU: ${machine.model} (${machine.isa}, ${machine.cores} cores); medians of ${rounds} alternating rounds`);
console.log(
  table(
    rows.map((r) => ({
      shape: r.shape,
      task: r.task,
      dtype: r.dtype,
      time: `${r.ms.toFixed(1)} ${r.unit} [${r.spread.map((x) => x.toFixed(1)).join('-')}]`,
      'x float32': r.speedVsFloat32.toFixed(2),
      'peak RSS': `${r.peakRssGB.toFixed(2)} GB`,
    })),
    ['shape', 'task', 'dtype', 'time', 'x float32', 'peak RSS'],
  ),
);
console.log(JSON.stringify({ cpu: machine, halfTeacher: rows }));
