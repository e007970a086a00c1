#!/usr/bin/env node
// Load time and peak memory of a Hugging Face checkpoint: skd's loader (in a child process, so the
// peak is its own) against transformers' from_pretrained (float32), side by side.
//   node tools/bench/hf-load.cjs DIR [--backend=native|wasm] [--rounds=2]
// With --child: loads DIR once and prints { seconds, maxRssGB, parameters } (what the parent runs).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const arg = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];
const dir = process.argv.slice(2).find((a) => !a.startsWith('--'));

async function child() {
  const { selectBackend } = require('@skd/backend');
  const { loadHuggingFaceModel } = require('@skd/models');
  await selectBackend({ backend: arg('backend', 'native') });
  const t0 = performance.now();
  const model = loadHuggingFaceModel(dir);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ side: 'skd', seconds, maxRssGB: process.resourceUsage().maxRSS / 1e6, parameters: model.parameterCount }));
}

const TORCH = `
import json, resource, sys, time, torch
from transformers import AutoModelForCausalLM
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
print(json.dumps({"side": "torch", "seconds": time.perf_counter() - t0, "maxRssGB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "parameters": sum(p.numel() for p in model.parameters())}))
`;

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 22 });
  if (result.status !== 0) throw new Error(result.stderr.slice(-2000));
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

function compare() {
  if (!dir) throw new Error('usage: node tools/bench/hf-load.cjs DIR [--backend=native|wasm] [--rounds=N]');
  const rows = [];
  for (let round = 0; round < Number(arg('rounds', 2)); round++) {
    rows.push(run(process.execPath, [__filename, dir, '--child', `--backend=${arg('backend', 'native')}`]));
    rows.push(run(path.resolve(__dirname, '../../.venv/bin/python'), ['-c', TORCH, dir]));
  }
  for (const r of rows)
    process.stderr.write(`${r.side}: ${r.seconds.toFixed(1)} s, peak RSS ${r.maxRssGB.toFixed(2)} GB (${(r.parameters / 1e6).toFixed(0)}M parameters)\n`);
  const best = (side, key) => Math.min(...rows.filter((r) => r.side === side).map((r) => r[key]));
  const summary = {
    dir,
    skdSeconds: best('skd', 'seconds'),
    torchSeconds: best('torch', 'seconds'),
    skdPeakRssGB: best('skd', 'maxRssGB'),
    torchPeakRssGB: best('torch', 'maxRssGB'),
  };
  console.log(JSON.stringify(summary));
}

(process.argv.includes('--child') ? child() : Promise.resolve(compare())).catch((error) => {
  console.error(error);
  process.exit(1);
});
