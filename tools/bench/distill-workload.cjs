// One distillation step of SKD against one of on-policy KD, with the same models, prompts, lengths
// and divergence: the committed arithmetic teacher and student of experiments/arithmetic, run by the
// real Trainer. Step times come from the trainer's own step events (sampling, teacher, loss,
// backward and update), the first step of each run being a warm-up.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { applyOverrides, buildRun, configBaseDir, readConfigFile } = require('@skd/config');
const { trainerFor } = require('@skd/cli');

const tf = require('@tensorflow/tfjs-core');
const { KERNELS } = require('@skd/ops');

const CONFIG = path.join(__dirname, '../../experiments/arithmetic/distill.json');
const TRANSLATION = path.join(__dirname, '../../experiments/translation/distill.json');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function distillSteps(sampler, steps, config = CONFIG) {
  const raw = applyOverrides(readConfigFile(config), [
    `sampler=${JSON.stringify(sampler)}`,
    `training.steps=${steps + 1}`,
    'training.evalEvery=0',
    'training.checkpointEvery=0',
    'training.evalLimit=1',
    'training.maxNewTokens=4',
  ]);
  const run = await buildRun(raw, { baseDir: configBaseDir(config), source: config });
  const trainer = trainerFor(run, 'bench');
  const events = [];
  trainer.events$.subscribe((event) => event.type === 'step' && events.push(event));
  try {
    await trainer.run();
  } finally {
    trainer.dispose();
    run.dispose();
  }
  const measured = events.slice(1);
  const mean = (key) => measured.reduce((s, e) => s + (e.sampler[key] ?? 0), 0) / measured.length;
  return {
    secondsPerStep: median(measured.map((e) => e.seconds)),
    targetTokensPerStep: measured.reduce((s, e) => s + e.tokens, 0) / measured.length,
    acceptanceRate: mean('acceptanceRate'),
    teacherPassesPerToken: mean('teacherPassesPerToken'),
  };
}

/** SKD (top-K 5, gamma 5, the main job's settings) against on-policy KD, alternating over rounds. */
async function compareSkdOnPolicy({ rounds = 3, steps = 5, log = () => {} } = {}) {
  const skd = [];
  const onPolicy = [];
  for (let r = 0; r < rounds; r++) {
    skd.push(await distillSteps({ kind: 'skd', options: { topK: 5, draftBlock: 5, maxNewTokens: 160 } }, steps));
    onPolicy.push(await distillSteps({ kind: 'on-policy', options: { maxNewTokens: 160 } }, steps));
    log(`distill round ${r + 1}: skd ${skd[r].secondsPerStep.toFixed(3)} s/step, on-policy ${onPolicy[r].secondsPerStep.toFixed(3)} s/step`);
  }
  const pick = (runs, key) => median(runs.map((x) => x[key]));
  const result = {
    setup: 'experiments/arithmetic: committed teacher and student-1k, batch 8, 160 new tokens, forward KL',
    skdSecondsPerStep: pick(skd, 'secondsPerStep'),
    onPolicySecondsPerStep: pick(onPolicy, 'secondsPerStep'),
    skdTargetTokensPerStep: pick(skd, 'targetTokensPerStep'),
    onPolicyTargetTokensPerStep: pick(onPolicy, 'targetTokensPerStep'),
    acceptanceRate: pick(skd, 'acceptanceRate'),
    teacherPassesPerToken: pick(skd, 'teacherPassesPerToken'),
  };
  result.stepRatio = result.skdSecondsPerStep / result.onPolicySecondsPerStep;
  return result;
}

/**
 * Supervised KD runs (forward KL over the full vocabulary) on the committed translation models
 * (V = 4000), `skd distill` in a fresh process each, with the fused forward-KL kernels and without
 * them (the preload `without-fused-kl.cjs` keeps them from registering, so the op takes its
 * composite form), in alternating rounds. Whole runs, not steps inside this process: the composite
 * form's many small allocations get slower as a real run's wasm heap fills (a 20-step loop in a
 * fresh process times it at half its cost in a run). Null where the kernels are not registered.
 */
async function compareFusedForwardKl({ rounds = 3, steps = 100, log = () => {} } = {}) {
  if ([KERNELS.forwardKl, KERNELS.forwardKlGrad].some((name) => tf.getKernel(name, tf.getBackend()) === undefined)) return null;
  const cli = path.join(__dirname, '../../packages/cli/dist/main.js');
  const run = (preload) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-kl-'));
    try {
      const args = [...(preload ? ['-r', path.join(__dirname, 'without-fused-kl.cjs')] : []), cli, 'distill', TRANSLATION, '--out', out];
      const sets = ['sampler={"kind":"supervised"}', `training.steps=${steps}`, 'training.evalEvery=0', 'training.checkpointEvery=0', 'training.testLimit=1'];
      const result = spawnSync(process.execPath, [...args, ...sets.flatMap((s) => ['--set', s])], { encoding: 'utf8', env: { ...process.env, SKD_THREADS: process.env.SKD_THREADS ?? '1' } });
      if (result.status !== 0) throw new Error(`skd distill failed: ${result.stderr.slice(-500)}`);
      const events = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line)).filter((e) => e.type === 'step');
      return { secondsPerStep: median(events.slice(1).map((e) => e.seconds)), finalLoss: events.at(-1).loss };
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  };
  const fused = [];
  const composite = [];
  for (let r = 0; r < rounds; r++) {
    fused.push(run(false));
    composite.push(run(true));
    log(`forward KL round ${r + 1}: fused ${fused[r].secondsPerStep.toFixed(3)} s/step, composite ${composite[r].secondsPerStep.toFixed(3)} s/step`);
  }
  const result = {
    setup: `experiments/translation: committed teacher and student-1k, supervised KD, batch 8, forward KL over 4000 tokens, ${steps}-step runs`,
    fusedSecondsPerStep: median(fused.map((x) => x.secondsPerStep)),
    compositeSecondsPerStep: median(composite.map((x) => x.secondsPerStep)),
    finalLossDifference: Math.abs(fused[0].finalLoss - composite[0].finalLoss),
  };
  result.speedup = result.compositeSecondsPerStep / result.fusedSecondsPerStep;
  return result;
}

module.exports = { compareSkdOnPolicy, compareFusedForwardKl };
