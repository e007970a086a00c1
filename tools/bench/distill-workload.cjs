// One distillation step of SKD against one of on-policy KD, with the same models, prompts, lengths
// and divergence: the committed arithmetic teacher and student of experiments/arithmetic, run by the
// real Trainer. Step times come from the trainer's own step events (sampling, teacher, loss,
// backward and update), the first step of each run being a warm-up.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { applyOverrides, buildRun, configBaseDir, readConfigFile } = require('@skd/config');
const { Trainer } = require('@skd/trainer');

const tf = require('@tensorflow/tfjs-core');
const { KERNELS } = require('@skd/ops');

const CONFIG = path.join(__dirname, '../../experiments/arithmetic/distill.json');
const TRANSLATION = path.join(__dirname, '../../experiments/translation/distill.json');

const { median } = require('./harness.cjs');

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
  const trainer = new Trainer(run);
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

/** SKD (top-K 5, gamma 5, the main job's settings; and with adaptive blocks up to 32) against on-policy KD, alternating over rounds. */
async function compareSkdOnPolicy({ rounds = 3, steps = 5, log = () => {} } = {}) {
  const skd = [];
  const adaptive = [];
  const onPolicy = [];
  for (let r = 0; r < rounds; r++) {
    skd.push(await distillSteps({ kind: 'skd', options: { topK: 5, draftBlock: 5, maxNewTokens: 160 } }, steps));
    adaptive.push(await distillSteps({ kind: 'skd', options: { topK: 5, draftBlock: 5, maxDraftBlock: 32, maxNewTokens: 160 } }, steps));
    onPolicy.push(await distillSteps({ kind: 'on-policy', options: { maxNewTokens: 160 } }, steps));
    log(
      `distill round ${r + 1}: skd ${skd[r].secondsPerStep.toFixed(3)} s/step, adaptive blocks ${adaptive[r].secondsPerStep.toFixed(3)} s/step, on-policy ${onPolicy[r].secondsPerStep.toFixed(3)} s/step`,
    );
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
    adaptiveSecondsPerStep: pick(adaptive, 'secondsPerStep'),
    adaptiveTeacherPassesPerToken: pick(adaptive, 'teacherPassesPerToken'),
  };
  result.stepRatio = result.skdSecondsPerStep / result.onPolicySecondsPerStep;
  result.adaptiveStepRatio = result.adaptiveSecondsPerStep / result.onPolicySecondsPerStep;
  return result;
}

/** The fused divergences compared by `compareFusedDivergences`: the config's divergence and the kernels that run it. */
const FUSED_DIVERGENCES = [
  { name: 'forward KL', divergence: { kind: 'forward-kl' }, kernels: [KERNELS.forwardKl, KERNELS.forwardKlGrad] },
  { name: 'JSD(0.5) (GKD)', divergence: { kind: 'jsd', options: { beta: 0.5 } }, kernels: [KERNELS.mixtureKl, KERNELS.mixtureKlGrad] },
  { name: 'skew KL(0.1) (DistiLLM)', divergence: { kind: 'skew-kl', options: { alpha: 0.1 } }, kernels: [KERNELS.mixtureKl, KERNELS.mixtureKlGrad] },
];

/**
 * Supervised KD runs (each divergence over the full vocabulary) on the committed translation models
 * (V = 4000), `skd distill` in a fresh process each, with the divergence's fused kernels and without
 * them (the preload `without-kernels.cjs` keeps them from registering, so the op takes its
 * composite form), in alternating rounds. Whole runs, not steps inside this process: the composite
 * form's many small allocations get slower as a real run's wasm heap fills (a 20-step loop in a
 * fresh process times it at half its cost in a run). One entry per divergence whose kernels are registered.
 */
async function compareFusedDivergences({ rounds = 3, steps = 100, log = () => {} } = {}) {
  const cli = path.join(__dirname, '../../packages/cli/dist/main.js');
  const run = ({ divergence, kernels }, composite) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-kl-'));
    try {
      const args = [...(composite ? ['-r', path.join(__dirname, 'without-kernels.cjs')] : []), cli, 'distill', TRANSLATION, '--out', out];
      const sets = [
        'sampler={"kind":"supervised"}',
        `divergence=${JSON.stringify(divergence)}`,
        `training.steps=${steps}`,
        'training.evalEvery=0',
        'training.checkpointEvery=0',
        'training.testLimit=1',
      ];
      const env = { ...process.env, SKD_THREADS: process.env.SKD_THREADS ?? '1', SKD_SKIP_KERNELS: composite ? kernels.join(',') : '' };
      const result = spawnSync(process.execPath, [...args, ...sets.flatMap((s) => ['--set', s])], { encoding: 'utf8', env });
      if (result.status !== 0) throw new Error(`skd distill failed: ${result.stderr.slice(-500)}`);
      const events = fs
        .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .filter((e) => e.type === 'step');
      return { secondsPerStep: median(events.slice(1).map((e) => e.seconds)), finalLoss: events.at(-1).loss };
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  };
  const results = [];
  for (const entry of FUSED_DIVERGENCES) {
    if (entry.kernels.some((name) => tf.getKernel(name, tf.getBackend()) === undefined)) continue;
    const fused = [];
    const composite = [];
    for (let r = 0; r < rounds; r++) {
      fused.push(run(entry, false));
      composite.push(run(entry, true));
      log(`${entry.name} round ${r + 1}: fused ${fused[r].secondsPerStep.toFixed(3)} s/step, composite ${composite[r].secondsPerStep.toFixed(3)} s/step`);
    }
    const result = {
      divergence: entry.name,
      setup: `experiments/translation: committed teacher and student-1k, supervised sequences, batch 8, ${entry.name} over 4000 tokens, ${steps}-step runs`,
      fusedSecondsPerStep: median(fused.map((x) => x.secondsPerStep)),
      compositeSecondsPerStep: median(composite.map((x) => x.secondsPerStep)),
      finalLossDifference: Math.abs(fused[0].finalLoss - composite[0].finalLoss),
    };
    result.speedup = result.compositeSecondsPerStep / result.fusedSecondsPerStep;
    results.push(result);
  }
  return results;
}

module.exports = { compareSkdOnPolicy, compareFusedDivergences, distillSteps };
