#!/usr/bin/env node
// Pretrained-model shapes against PyTorch 2 at its best, side by side in one run (part of
// `npm run bench`; alone: `node tools/bench/pretrained.cjs`). For the SmolLM2-135M, Qwen2.5-0.5B and Qwen3-0.6B
// shapes (tools/bench/pretrained-shapes.json, random weights), each in its own child process so its
// peak memory is its own:
//   - a training step (B=4, T=256: forward, next-token cross-entropy, backward, Adam), and
//   - greedy generation with a KV cache (one prompt of 32 tokens, 64 new tokens),
// skd on the backend a run of that size gets (native: the models exceed the wasm heap) and PyTorch 2
// from .venv (transformers' model class, SDPA attention, at 1 and at 2 threads; round 1 finds the
// faster, later rounds alternate skd with it, and the medians of the rounds are compared).
// Options: --quick (1 round, 1 timed step), --rounds=N (default 3), --only=smollm2-135m,qwen2.5-0.5b,qwen3-0.6b,
//          --tasks=train,generate. Returns (and prints) the rows; run.cjs folds them into its JSON.
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { median, table } = require('./harness.cjs');

const REPO = path.resolve(__dirname, '../..');
const PYTHON = path.join(REPO, '.venv/bin/python');
const log = (line) => process.stderr.write(`${line}\n`);

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, TOKENIZERS_PARALLELISM: 'false' } });
  if (result.status !== 0) throw new Error(`${path.basename(args[0])} ${args.slice(1).join(' ')} failed:\n${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

function skd(shape, task, steps) {
  return run(process.execPath, [path.join(__dirname, 'pretrained-skd.cjs'), `--shape=${shape}`, `--task=${task}`, `--steps=${steps}`, '--warmup=1']);
}

function torch(shape, task, steps, threads) {
  return run(PYTHON, [
    path.join(__dirname, 'torch_pretrained.py'),
    '--shape',
    shape,
    '--task',
    task,
    '--steps',
    String(steps),
    '--warmup',
    '1',
    '--threads',
    String(threads),
  ]);
}

async function comparePretrained({ quick = false, rounds = 3, only, tasks = ['train', 'generate'] } = {}) {
  const names = only ?? ['smollm2-135m', 'qwen2.5-0.5b', 'qwen3-0.6b'];
  const threads = Array.from({ length: os.cpus().length }, (_, i) => i + 1);
  const steps = quick ? 1 : 3;
  const rows = [];
  for (const shape of names) {
    for (const task of tasks) {
      const ours = [];
      const theirs = [];
      let best;
      let skdRun;
      let torchRun;
      for (let round = 0; round < (quick ? 1 : rounds); round++) {
        skdRun = skd(shape, task, steps);
        ours.push(skdRun.ms);
        log(`${shape} ${task}: skd ${skdRun.ms.toFixed(0)} ms (${skdRun.backend}, peak RSS ${skdRun.maxRssGB.toFixed(2)} GB)`);
        if (best === undefined) {
          const tried = threads.map((t) => torch(shape, task, steps, t));
          tried.forEach((r) =>
            log(`${shape} ${task}: torch ${r.threads} thread${r.threads > 1 ? 's' : ''} ${r.ms.toFixed(0)} ms (peak RSS ${r.maxRssGB.toFixed(2)} GB)`),
          );
          torchRun = tried.reduce((a, b) => (b.ms < a.ms ? b : a));
          best = torchRun.threads;
        } else {
          torchRun = torch(shape, task, steps, best);
          log(`${shape} ${task}: torch ${best} threads ${torchRun.ms.toFixed(0)} ms`);
        }
        theirs.push(torchRun.ms);
      }
      const ms = median(ours);
      const torchMs = median(theirs);
      rows.push({
        shape,
        task,
        parameters: skdRun.parameters,
        setup: task === 'train' ? `B=${skdRun.B}, T=${skdRun.T}` : `batch ${skdRun.batch}, prompt ${skdRun.prompt}, ${skdRun.newTokens} new tokens`,
        skdBackend: skdRun.backend,
        skdMs: ms,
        torchMs,
        torchThreads: best,
        torchVersion: torchRun.torch,
        speedVsTorch: torchMs / ms,
        skdPeakRssGB: skdRun.maxRssGB,
        torchPeakRssGB: torchRun.maxRssGB,
      });
    }
  }
  return rows;
}

function printPretrained(rows) {
  const fmt = (x, d = 0) => x.toFixed(d);
  console.log(
    table(
      rows.map((r) => ({
        shape: `${r.shape} (${(r.parameters / 1e6).toFixed(0)}M)`,
        task: r.task === 'train' ? `train step ${r.setup}` : `greedy ${r.setup}`,
        skd: r.task === 'train' ? `${fmt(r.skdMs)} ms` : `${fmt(1000 / r.skdMs, 1)} tok/s`,
        [`torch ${rows[0]?.torchVersion ?? ''}`]:
          r.task === 'train' ? `${fmt(r.torchMs)} ms (${r.torchThreads}t)` : `${fmt(1000 / r.torchMs, 1)} tok/s (${r.torchThreads}t)`,
        'x torch': fmt(r.speedVsTorch, 2),
        'peak RSS skd/torch': `${fmt(r.skdPeakRssGB, 1)}/${fmt(r.torchPeakRssGB, 1)} GB`,
      })),
      ['shape', 'task', 'skd', `torch ${rows[0]?.torchVersion ?? ''}`, 'x torch', 'peak RSS skd/torch'],
    ),
  );
}

module.exports = { comparePretrained, printPretrained };

if (require.main === module) {
  const flag = (name) => process.argv.includes(`--${name}`);
  const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  (async () => {
    const rows = await comparePretrained({
      quick: flag('quick'),
      rounds: Number(option('rounds') ?? 3),
      ...(option('only') ? { only: option('only').split(',') } : {}),
      ...(option('tasks') ? { tasks: option('tasks').split(',') } : {}),
    });
    printPretrained(rows);
    console.log(JSON.stringify({ pretrained: rows }));
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
