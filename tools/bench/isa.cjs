#!/usr/bin/env node
// The CPU's vector instructions: the same work on each x86-64 build of the native kernels this CPU
// runs (SKD_ISA=avx512, avx2, baseline; packages/native builds all three and loads the best by
// default), each level in its own process, levels alternating over rounds, medians. Workloads: a
// training step (forward, loss and backward) of a 6-layer GPT (d=384, T=256, B=8, V=2048) and of a
// Llama-family decoder of the same width (GQA 6/2, SwiGLU), and the arithmetic main job's SKD step
// (sampling, verification, loss, update; the real Trainer). Prints the CPU and its flags first; the
// last line is one JSON object.
// Options: --rounds=N (default 3), --steps=N (timed steps per process, default 4).
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const option = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];
const { median } = require('./harness.cjs');

if (process.argv.includes('--child')) {
  (async () => {
    const tf = require('@tensorflow/tfjs-core');
    const { selectBackend } = require('@skd/backend');
    const { GptModel, DecoderModel, gptConfig, decoderConfig } = require('@skd/models');
    const { sparseCrossEntropy } = require('@skd/ops');
    const steps = Number(option('steps', 4));
    const choice = await selectBackend({ backend: 'native' });
    const result = { kernels: choice.native?.summary };
    const shapes = {
      gpt: () => new GptModel(gptConfig({ vocabSize: 2048, layers: 6, dModel: 384, heads: 6, contextLength: 256 }), { seed: 1 }),
      llama: () =>
        new DecoderModel(decoderConfig({ vocabSize: 2048, layers: 6, dModel: 384, heads: 6, kvHeads: 2, dFf: 1024, contextLength: 256 }), { seed: 1 }),
    };
    for (const [name, make] of Object.entries(shapes)) {
      const model = make();
      const tokens = tf.tensor2d(
        Array.from({ length: 8 * 256 }, (_, i) => (i * 7919) % 2048),
        [8, 256],
        'int32',
      );
      const targets = tf.concat([tf.slice(tokens, [0, 1], [-1, -1]), tf.zeros([8, 1], 'int32')], 1);
      const times = [];
      for (let s = 0; s < steps + 1; s++) {
        const start = process.hrtime.bigint();
        const { value, grads } = tf.variableGrads(() => tf.mean(sparseCrossEntropy(model.logits(tokens), targets)), model.trainableVariables);
        await value.data();
        tf.dispose([value, ...Object.values(grads)]);
        if (s > 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      result[name] = median(times);
      tf.dispose([tokens, targets]);
      model.dispose();
    }
    const { distillSteps } = require('./distill-workload.cjs');
    result.skd = (await distillSteps({ kind: 'skd', options: { topK: 5, draftBlock: 5, maxNewTokens: 160 } }, steps)).secondsPerStep * 1000;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  })().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else {
  const { chooseIsa, cpuFeatures, addonPathFor } = require('@skd/native');
  const fs = require('node:fs');
  const cpu = cpuFeatures();
  const levels = ['avx512', 'avx2', 'baseline'].filter((l) => chooseIsa({ SKD_ISA: l }, cpu.flags).level === l && fs.existsSync(addonPathFor(l)));
  const vector = [...cpu.flags].filter((f) => /^(avx|fma|f16c|amx)/.test(f)).sort();
  process.stderr.write(`CPU: ${cpu.model}, ${os.cpus().length} cores; vector flags: ${vector.join(' ')}\nlevels built and runnable: ${levels.join(', ')}\n`);
  const rounds = Number(option('rounds', 3));
  const samples = Object.fromEntries(levels.map((l) => [l, { gpt: [], llama: [], skd: [] }]));
  for (let r = 0; r < rounds; r++) {
    for (const level of r % 2 === 0 ? levels : [...levels].reverse()) {
      const child = spawnSync(process.execPath, [__filename, '--child', `--steps=${option('steps', 4)}`], {
        encoding: 'utf8',
        env: { ...process.env, SKD_ISA: level },
      });
      if (child.status !== 0) throw new Error(`${level}: ${child.stderr.slice(-2000)}`);
      const result = JSON.parse(child.stdout.trim().split('\n').pop());
      for (const key of ['gpt', 'llama', 'skd']) samples[level][key].push(result[key]);
      process.stderr.write(
        `round ${r + 1} ${level} (${result.kernels}): gpt ${result.gpt.toFixed(0)} ms, llama ${result.llama.toFixed(0)} ms, skd ${result.skd.toFixed(0)} ms\n`,
      );
    }
  }
  const best = levels[0];
  process.stdout.write('| level | GPT step (ms) | Llama step (ms) | SKD step (ms) |\n|---|---|---|---|\n');
  const summary = {};
  for (const level of levels) {
    const row = Object.fromEntries(['gpt', 'llama', 'skd'].map((k) => [k, median(samples[level][k])]));
    const spread = (k) => `${Math.min(...samples[level][k]).toFixed(0)}-${Math.max(...samples[level][k]).toFixed(0)}`;
    const ratio = (k) => (level === best ? '' : ` (${(row[k] / median(samples[best][k])).toFixed(2)}x)`);
    process.stdout.write(
      `| ${level} | ${row.gpt.toFixed(0)} [${spread('gpt')}]${ratio('gpt')} | ${row.llama.toFixed(0)} [${spread('llama')}]${ratio('llama')} | ${row.skd.toFixed(0)} [${spread('skd')}]${ratio('skd')} |\n`,
    );
    summary[level] = row;
  }
  process.stdout.write(`${JSON.stringify({ cpu: cpu.model, cores: os.cpus().length, rounds, levels: summary })}\n`);
}
