#!/usr/bin/env node
// How the cost of a training step and of generation grows with each axis of the model and batch,
// one axis at a time around a base shape (4 layers, d=256, T=128, B=8, vocabulary 1024), on the
// selected backend (default wasm + native kernels). Prints one markdown table per axis and, last, a
// JSON line. Used for docs/performance.md. Run: node tools/bench/scaling.cjs [--quick]
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { timeIt } = require('./harness.cjs');
const { buildModel, trainingStep, trainingStepFlops, generateCached } = require('./gpt-workloads.cjs');

const quick = process.argv.includes('--quick');
const BASE = { layers: 4, d: 256, T: 128, B: 8, vocab: 1024 };
const AXES = { d: [128, 256, 384, 512], T: [64, 128, 256, 512], layers: [2, 4, 6, 8], B: [4, 8, 16, 32] };

async function measure(shape) {
  const model = buildModel(shape);
  const step = trainingStep(model, shape);
  const trainMs = await timeIt(step, { warmup: 1, repeats: quick ? 2 : 5, maxSeconds: 30 });
  step.dispose();
  const newTokens = 32;
  const genMs = await timeIt(() => generateCached(model, { B: shape.B, newTokens, vocab: shape.vocab }), { warmup: 1, repeats: quick ? 1 : 3 });
  model.dispose();
  return { trainMs, trainGflops: trainingStepFlops(shape) / (trainMs / 1000) / 1e9, generateTokensPerSecond: (shape.B * newTokens) / (genMs / 1000) };
}

(async () => {
  const backend = await selectBackend({ backend: process.env.SKD_BACKEND ?? 'wasm' });
  process.stderr.write(`${backend.summary}\n`);
  const results = {};
  for (const [axis, values] of Object.entries(AXES)) {
    const rows = [];
    for (const value of values) {
      const shape = { ...BASE, [axis]: value };
      const r = await measure(shape);
      rows.push({ [axis]: value, ...r });
      process.stderr.write(
        `${axis}=${value}: ${r.trainMs.toFixed(0)} ms/step, ${r.trainGflops.toFixed(0)} GFLOP/s, ${r.generateTokensPerSecond.toFixed(0)} tok/s\n`,
      );
    }
    results[axis] = rows;
    console.log(`\n| ${axis} | train ms/step | GFLOP/s | generate tok/s |\n|---|---|---|---|`);
    for (const row of rows)
      console.log(`| ${row[axis]} | ${row.trainMs.toFixed(0)} | ${row.trainGflops.toFixed(0)} | ${row.generateTokensPerSecond.toFixed(0)} |`);
  }
  console.log(JSON.stringify({ base: BASE, backend: backend.summary, numTensors: tf.memory().numTensors, results }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
