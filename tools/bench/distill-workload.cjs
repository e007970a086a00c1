// One distillation step of SKD against one of on-policy KD, with the same models, prompts, lengths
// and divergence: the committed arithmetic teacher and student of experiments/arithmetic, run by the
// real Trainer. Step times come from the trainer's own step events (sampling, teacher, loss,
// backward and update), the first step of each run being a warm-up.
const path = require('node:path');
const { applyOverrides, buildRun, configBaseDir, readConfigFile } = require('@skd/config');
const { trainerFor } = require('@skd/cli');

const CONFIG = path.join(__dirname, '../../experiments/arithmetic/distill.json');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function distillSteps(sampler, steps) {
  const raw = applyOverrides(readConfigFile(CONFIG), [
    `sampler=${JSON.stringify(sampler)}`,
    `training.steps=${steps + 1}`,
    'training.evalEvery=0',
    'training.checkpointEvery=0',
    'training.evalLimit=1',
    'training.maxNewTokens=4',
  ]);
  const run = await buildRun(raw, { baseDir: configBaseDir(CONFIG), source: CONFIG });
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

module.exports = { compareSkdOnPolicy };
