#!/usr/bin/env node
// The device check of the webgpu backend (bash tools/gpu-check.sh run, on a GPU machine; here it runs
// on Mesa's software adapter). Prints, in order: the adapter; kernel equality against tfjs's CPU
// backend (matrix products, softmax, the distillation loss and its gradients, a Llama-style decoder's
// logits, cached greedy decoding against full recomputation, and token sampling against the host's
// draws, with how many rows the GPU left to the host); matrix-product throughput at bench
// shapes; the SmolLM2-135M-shape training step and generation (tools/bench/pretrained-skd.cjs); and
// a short SKD distillation of the committed arithmetic models with the CLI. Exit status 1 if any
// equality fails. Options: --quick (smaller bench shapes, no 135M rows), --skip-135m.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const tf = require('@tensorflow/tfjs-core');
const { selectBackend } = require('@skd/backend');
const { Rng } = require('@skd/core');
const { DecoderModel, decoderConfig, generate } = require('@skd/models');
const { TokenDivergence, forwardKl, tokenLoss } = require('@skd/divergences');
const { chooseTokenWith, sampleTokens } = require('@skd/ops');

const REPO = path.resolve(__dirname, '../..');
const quick = process.argv.includes('--quick');
const skip135m = quick || process.argv.includes('--skip-135m');
const say = (line) => process.stdout.write(`${line}\n`);
let failures = 0;

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs `compute` (returning tensors) on the CPU backend, then on webgpu; compares every output. */
async function equal(name, compute, tolerance = 1e-4) {
  const read = async (backend) => {
    await selectBackend({ backend });
    const outputs = await compute();
    const values = [];
    for (const t of outputs) values.push(Array.from(await t.data()));
    tf.dispose(outputs);
    return values;
  };
  const cpu = await read('cpu');
  const gpu = await read('webgpu');
  const diff = Math.max(...cpu.map((c, i) => maxAbsDiff(c, gpu[i])));
  const scale = Math.max(...cpu.flat().map(Math.abs));
  const ok = diff <= tolerance * Math.max(1, scale);
  if (!ok) failures++;
  say(`  ${ok ? 'ok  ' : 'FAIL'} ${name}: max |webgpu - cpu| ${diff.toExponential(2)} (largest value ${scale.toFixed(3)}, tolerance ${tolerance} relative)`);
}

const random = (rng, n, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

const SMALL_LLAMA = {
  architecture: 'llama',
  vocabSize: 211,
  contextLength: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  dModel: 64,
  dFf: 128,
  ropeTheta: 10000,
  normEpsilon: 1e-5,
  tiedHead: false,
};

async function kernels() {
  say('kernel equality (webgpu against tfjs-backend-cpu):');
  const rng = Rng.create(5);
  const a = random(rng, 96 * 80);
  const b = random(rng, 80 * 72);
  await equal('matMul 96x80 @ 80x72', () => [tf.matMul(tf.tensor2d(a, [96, 80]), tf.tensor2d(b, [80, 72]))]);
  await equal('softmax over 72', () => [tf.softmax(tf.matMul(tf.tensor2d(a, [96, 80]), tf.tensor2d(b, [80, 72])))]);
  const [B, T, V] = [3, 9, 211];
  const student = random(rng, B * T * V, 2);
  const teacher = random(rng, B * T * V, 2);
  const tokens = Int32Array.from({ length: B * T }, () => rng.int(V));
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T >= 3 ? 1 : 0));
  const divergence = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });
  await equal('forward KL token loss and its gradient', () => {
    const s = tf.tensor3d(student, [B, T, V]);
    const { value, grad } = tf.valueAndGrad((x) =>
      tokenLoss({
        divergence,
        tokens: tf.tensor2d(tokens, [B, T], 'int32'),
        targetMask: tf.tensor2d(mask, [B, T]),
        studentLogits: x,
        teacherLogits: tf.tensor3d(teacher, [B, T, V]),
      }),
    )(s);
    return [value, grad];
  });
  const config = decoderConfig(SMALL_LLAMA);
  const prompt = [Array.from({ length: 12 }, (_, i) => (7 * i + 3) % V), Array.from({ length: 12 }, (_, i) => (5 * i + 1) % V)];
  await equal('Llama-style decoder logits (2 layers, GQA 4/2)', () => {
    const model = new DecoderModel(config, { seed: 3 });
    const logits = model.logits(tf.tensor2d(prompt.flat(), [2, 12], 'int32'));
    const copy = logits.clone();
    tf.dispose(logits);
    model.dispose();
    return [copy];
  });
  // Cached greedy decoding on webgpu equals recomputation: each step's argmax from the full forward.
  await selectBackend({ backend: 'webgpu' });
  const model = new DecoderModel(config, { seed: 3 });
  const cached = await generate(model, prompt, { maxNewTokens: 16, eos: -1, pad: 0, rng: Rng.create(1), greedy: true });
  const recomputed = [];
  for (const p of prompt) {
    const ids = [...p];
    for (let i = 0; i < 16; i++) {
      const logits = tf.tidy(() => tf.argMax(tf.squeeze(model.logits(tf.tensor2d(ids, [1, ids.length], 'int32')), [0]), -1));
      const next = (await logits.data())[ids.length - 1];
      logits.dispose();
      ids.push(next);
    }
    recomputed.push(ids.slice(p.length));
  }
  model.dispose();
  const same = JSON.stringify(cached.tokens) === JSON.stringify(recomputed);
  if (!same) failures++;
  say(`  ${same ? 'ok  ' : 'FAIL'} cached greedy decoding (KV cache) equals recomputation: ${JSON.stringify(cached.tokens[0]?.slice(0, 8))}...`);
  // Token sampling on the GPU (only ids read back) draws what the host's float64 reference draws.
  const [rows, vocab] = [64, 49152];
  const values = Float32Array.from({ length: rows * vocab }, (_, i) => 4 * Math.sin(0.37 * i) * Math.cos(0.0011 * i));
  const logits = tf.tensor2d(values, [rows, vocab]);
  const [gpu, host] = [Rng.create(5), Rng.create(5)];
  const ids = await sampleTokens(logits, { temperature: 0.8 }, gpu);
  const expected = Array.from({ length: rows }, (_, b) => chooseTokenWith(values.subarray(b * vocab, (b + 1) * vocab), { temperature: 0.8 }, host.random()));
  const raw = tf
    .engine()
    .runKernel('SkdSampleTokens', { logits }, { uniforms: expected.map((_, b) => (b + 0.5) / rows), temperature: 0.8, topK: 0, topP: 1, greedy: false });
  const undecided = Array.from(await raw.data()).filter((id) => id === -4).length;
  tf.dispose([logits, raw]);
  const drawn = expected.every((id, b) => ids[b] === id);
  if (!drawn) failures++;
  say(
    `  ${drawn ? 'ok  ' : 'FAIL'} token sampling (temperature 0.8, ${rows} rows of ${vocab}) equals the host's draws; ${undecided} of ${rows} rows left to the host`,
  );
}

async function throughput() {
  say('matrix products on webgpu (float32, median of 5 after a warm-up):');
  await selectBackend({ backend: 'webgpu' });
  for (const n of quick ? [256, 512] : [1024, 2048, 4096]) {
    const x = tf.randomNormal([n, n]);
    const y = tf.randomNormal([n, n]);
    const times = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const z = tf.matMul(x, y);
      await z.data();
      z.dispose();
      if (i > 0) times.push(performance.now() - t0);
    }
    const ms = times.sort((p, q) => p - q)[2];
    say(`  ${n}^3: ${ms.toFixed(1)} ms, ${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s (with the read back)`);
    tf.dispose([x, y]);
  }
}

function child(label, command, args) {
  const t0 = Date.now();
  const result = spawnSync(command, args, { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 26 });
  const tail = `${result.stdout}${result.stderr}`.trim().split('\n').slice(-6).join('\n    ');
  if (result.status !== 0) failures++;
  say(`  ${result.status === 0 ? 'ok  ' : 'FAIL'} ${label} (${((Date.now() - t0) / 1000).toFixed(1)} s):\n    ${tail}`);
}

(async () => {
  say(`node ${process.version}, ${process.platform}-${process.arch}`);
  const choice = await selectBackend({ backend: 'webgpu' });
  say(choice.summary);
  say(`adapter features: ${choice.adapter?.features.join(' ')}`);
  await kernels();
  await throughput();
  if (!skip135m) {
    say('SmolLM2-135M shape (tools/bench/pretrained-skd.cjs, random weights):');
    const bench = path.join(REPO, 'tools/bench/pretrained-skd.cjs');
    child('training step, B=4, T=256', process.execPath, [bench, '--shape=smollm2-135m', '--task=train', '--backend=webgpu', '--steps=2', '--warmup=1']);
    child('greedy generation, prompt 32, 64 new tokens', process.execPath, [
      bench,
      '--shape=smollm2-135m',
      '--task=generate',
      '--backend=webgpu',
      '--steps=2',
      '--warmup=1',
    ]);
  }
  say('SKD distillation of the committed arithmetic models (skd distill, 3 steps):');
  const cli = require.resolve('@skd/cli/package.json').replace(/package\.json$/, 'dist/main.js');
  const out = path.join(require('node:os').tmpdir(), `skd-gpu-check-${process.pid}`);
  const sets = [
    'backend=webgpu',
    'training.steps=3',
    'training.batchSize=8',
    'training.evalEvery=0',
    'training.testLimit=4',
    'training.maxNewTokens=32',
    'training.checkpointEvery=0',
  ];
  child('skd distill on webgpu', process.execPath, [
    cli,
    'distill',
    path.join(REPO, 'experiments/arithmetic/distill.json'),
    '--out',
    out,
    ...sets.flatMap((s) => ['--set', s]),
  ]);
  say(failures ? `${failures} check(s) FAILED` : 'all checks passed');
  process.exit(failures ? 1 : 0);
})().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
