#!/usr/bin/env node
// `npm run bench`: the project's own GPT on this machine, side by side in one run:
//   training step and KV-cache generation at d=128/T=64/B=16 and d=256/T=128/B=16 on
//   stock wasm, wasm + skd's native kernels, and PyTorch CPU (when python3-torch is installed);
//   the KV cache against full recomputation at growing lengths; a memory soak; SKD block
//   verification (gamma 5) against token-by-token (gamma 1).
// The last line is one JSON object, so results can be compared across commits.
// Options: --soak=N (training steps in the memory soak, default 200; the target is checked at 1000),
//          --quick (fewer repeats), --no-torch.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { registerNativeKernels } = require('@skd/native');
const { timeIt, table } = require('./harness.cjs');
const { buildModel, trainingStep, generateCached, generateUncached } = require('./gpt-workloads.cjs');
const { runSkd } = require('./skd-workload.cjs');

const flag = (name) => process.argv.includes(`--${name}`);
const option = (name, fallback) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1]);
const quick = flag('quick');
const log = (line) => process.stderr.write(`${line}\n`);

const SIZES = [
  { name: 'd128', d: 128, T: 64, B: 16 },
  { name: 'd256', d: 256, T: 128, B: 16 },
];
const NEW_TOKENS = 64;

function torchAvailable() {
  if (flag('no-torch')) return false;
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

function runTorch(size) {
  const script = path.join(__dirname, 'torch_gpt.py');
  const result = spawnSync('/usr/bin/python3', [script, `--d=${size.d}`, `--T=${size.T}`, `--B=${size.B}`, `--new-tokens=${NEW_TOKENS}`], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`torch reference failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

async function measure(size, mode) {
  registerNativeKernels({ stockBaseline: mode === 'stock' });
  const model = buildModel(size);
  const step = trainingStep(model, size);
  const slow = mode === 'stock';
  const trainMs = await timeIt(step, { warmup: 1, repeats: quick || slow ? 2 : 8, maxSeconds: slow ? 40 : 20 });
  step.dispose();
  const genMs = await timeIt(() => generateCached(model, { B: size.B, newTokens: NEW_TOKENS }), { warmup: 1, repeats: quick || slow ? 1 : 3 });
  model.dispose();
  const result = { trainMs, trainTokensPerSecond: (size.B * size.T) / (trainMs / 1000), generateTokensPerSecond: (size.B * NEW_TOKENS) / (genMs / 1000) };
  log(`${size.name} ${mode}: train ${trainMs.toFixed(1)} ms/step, generate ${result.generateTokensPerSecond.toFixed(0)} tok/s`);
  return result;
}

async function cacheRatios() {
  registerNativeKernels();
  const size = SIZES[0];
  const model = buildModel(size);
  const rows = [];
  for (const newTokens of [16, 64, 120]) {
    const cached = await timeIt(() => generateCached(model, { B: size.B, newTokens }), { warmup: 1, repeats: 3 });
    const uncached = await timeIt(() => generateUncached(model, { B: size.B, newTokens }), { warmup: 1, repeats: quick ? 1 : 2 });
    rows.push({ newTokens, cachedTokensPerSecond: (size.B * newTokens) / (cached / 1000), uncachedTokensPerSecond: (size.B * newTokens) / (uncached / 1000), cacheSpeedup: uncached / cached });
    log(`cache vs recompute, ${newTokens} new tokens: ${(uncached / cached).toFixed(2)}x`);
  }
  model.dispose();
  return rows;
}

async function soak(steps) {
  registerNativeKernels();
  const size = SIZES[0];
  const model = buildModel(size);
  const step = trainingStep(model, size);
  const heap = () => tf.backend().wasm.HEAPU8.length;
  for (let i = 0; i < 5; i++) step();
  const start = { tensors: tf.memory().numTensors, wasmHeapBytes: heap(), rssBytes: process.memoryUsage().rss };
  for (let i = 0; i < steps; i++) step();
  const end = { tensors: tf.memory().numTensors, wasmHeapBytes: heap(), rssBytes: process.memoryUsage().rss };
  step.dispose();
  model.dispose();
  log(`soak ${steps} steps: tensors ${start.tensors} -> ${end.tensors}, wasm heap ${start.wasmHeapBytes} -> ${end.wasmHeapBytes}`);
  return { steps, start, end, tensorGrowth: end.tensors - start.tensors, wasmHeapGrowthBytes: end.wasmHeapBytes - start.wasmHeapBytes };
}

(async () => {
  const backend = await selectBackend({ backend: 'wasm' });
  log(backend.summary);
  if (!backend.native?.native) log('warning: the OpenBLAS addon is not built; "native" rows measure stock wasm');
  const withTorch = torchAvailable();
  const summary = { machine: `${require('node:os').cpus().length} cores`, backend: backend.summary, torch: null, sizes: {} };
  const rows = [];
  for (const size of SIZES) {
    const stock = await measure(size, 'stock');
    const native = await measure(size, 'native');
    const torch = withTorch ? runTorch(size) : null;
    if (torch) summary.torch = `${torch.torch} (${torch.threads} threads)`;
    summary.sizes[size.name] = {
      shape: { d: size.d, T: size.T, B: size.B, layers: 2, vocab: 256 },
      train: { stockMs: stock.trainMs, nativeMs: native.trainMs, torchMs: torch?.trainMs ?? null },
      generate: { stockTokensPerSecond: stock.generateTokensPerSecond, nativeTokensPerSecond: native.generateTokensPerSecond, torchTokensPerSecond: torch?.generateTokensPerSecond ?? null },
      speedupVsStockWasm: stock.trainMs / native.trainMs,
      ratioVsTorch: torch ? torch.trainMs / native.trainMs : null,
      generateSpeedupVsStockWasm: native.generateTokensPerSecond / stock.generateTokensPerSecond,
      generateRatioVsTorch: torch ? native.generateTokensPerSecond / torch.generateTokensPerSecond : null,
    };
    const s = summary.sizes[size.name];
    rows.push({
      size: `d=${size.d} T=${size.T} B=${size.B}`,
      'stock ms': stock.trainMs.toFixed(0),
      'native ms': native.trainMs.toFixed(0),
      'torch ms': torch ? torch.trainMs.toFixed(0) : '-',
      'x stock': s.speedupVsStockWasm.toFixed(1),
      'torch/ours': s.ratioVsTorch === null ? '-' : s.ratioVsTorch.toFixed(2),
      'gen tok/s (stock/native/torch)': `${stock.generateTokensPerSecond.toFixed(0)}/${native.generateTokensPerSecond.toFixed(0)}/${torch ? torch.generateTokensPerSecond.toFixed(0) : '-'}`,
    });
  }
  summary.kvCache = await cacheRatios();
  summary.soak = await soak(option('soak', quick ? 50 : 200));
  registerNativeKernels();
  Object.assign(summary, await runSkd({ quick, log }));
  console.log(table(rows, Object.keys(rows[0])));
  console.log(JSON.stringify(summary));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
