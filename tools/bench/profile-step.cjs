#!/usr/bin/env node
// Where a training step's time goes, by kernel, on the selected backend (default wasm + native).
// Run: node tools/bench/profile-step.cjs [--d=256 --T=128 --B=16 --layers=2 --vocab=256] [--stock]
// (the teacher shape: --layers=6 --d=384 --T=256 --B=8 --vocab=2048)
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { registerNativeKernels } = require('@skd/native');
const { buildModel, trainingStep } = require('./gpt-workloads.cjs');

const option = (name, fallback) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1]);

(async () => {
  await selectBackend({ backend: 'wasm' });
  registerNativeKernels({ stockBaseline: process.argv.includes('--stock') });
  const size = { d: option('d', 256), T: option('T', 128), B: option('B', 16), layers: option('layers', 2), vocab: option('vocab', 256) };
  const model = buildModel(size);
  const step = trainingStep(model, size);
  step();
  const info = await tf.profile(() => {
    step();
  });
  const byKernel = new Map();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += await k.kernelTimeMs;
    entry.calls += 1;
    byKernel.set(k.name, entry);
  }
  const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20);
  console.log(`total kernel time ${total.toFixed(1)} ms over ${info.kernels.length} kernel calls`);
  for (const [name, e] of rows)
    console.log(`${name.padEnd(22)} ${e.ms.toFixed(1).padStart(8)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${e.calls} calls`);
  step.dispose();
  model.dispose();
})();
