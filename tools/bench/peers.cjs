#!/usr/bin/env node
// `npm run bench:peers`: skd against the peer a user would otherwise pick, Hugging Face TRL's
// GKDTrainer (from .venv, PyTorch 2, at its fastest thread count), on the same models and data: the
// committed arithmetic teacher and student-1k exported as Hugging Face folders (skd export), the
// first 1000 training prompts, batch 8, 32 new tokens, temperature 1, forward KL, fully on-policy.
// skd runs its on-policy KD step and its SKD step (top-K 5, draft block 5, and with adaptive blocks
// up to 32) on those folders (model and tokenizer kind hf). Each run takes 40 steps; the median of steps 5-40 is its step time. Round 1
// tries TRL at every thread count; rounds alternate TRL, skd on-policy, skd SKD.
// Options: --rounds=N (default 2), --steps=N (default 40). The last line is one JSON object.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const PYTHON = path.join(REPO, '.venv/bin/python');
const CLI = path.join(REPO, 'packages/cli/dist/main.js');
const CONFIG = path.join(REPO, 'experiments/arithmetic/distill.json');
const DATA = path.join(REPO, 'data/arithmetic/train.jsonl.gz');
const option = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];
const log = (line) => process.stderr.write(`${line}\n`);
const { median } = require('./harness.cjs');
const SETTINGS = {
  examples: 1000,
  batch: 8,
  newTokens: 32,
  temperature: 1,
  divergence: 'forward KL (TRL: generalized JSD, beta 0)',
  onPolicy: 'fully (TRL lmbda 1)',
  firstTimedStep: 5,
};

function exportModels(dir) {
  for (const name of ['teacher', 'student-1k']) {
    const result = spawnSync(process.execPath, [CLI, 'export', path.join(REPO, 'experiments/arithmetic/models', name), '--out', path.join(dir, name)], {
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`skd export ${name} failed: ${result.stderr}`);
  }
}

/** The first `n` training records, ungzipped, as TRL's script reads them. */
function writePrompts(file, n) {
  const zlib = require('node:zlib');
  const lines = zlib.gunzipSync(fs.readFileSync(DATA)).toString('utf8').split('\n').filter(Boolean).slice(0, n);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function trl(dir, steps, threads, template) {
  const args = [
    path.join(__dirname, 'trl_gkd.py'),
    '--student',
    path.join(dir, 'student-1k'),
    '--teacher',
    path.join(dir, 'teacher'),
    '--data',
    path.join(dir, 'prompts.jsonl'),
    '--template',
    template,
  ];
  args.push(
    '--examples',
    String(SETTINGS.examples),
    '--batch',
    String(SETTINGS.batch),
    '--new-tokens',
    String(SETTINGS.newTokens),
    '--steps',
    String(steps),
    '--threads',
    String(threads),
  );
  const result = spawnSync(PYTHON, args, {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  if (result.status !== 0) throw new Error(`trl_gkd.py failed (${result.status}): ${result.stderr.slice(-3000)}`);
  const out = JSON.parse(result.stdout.trim().split('\n').pop());
  return { ...out, seconds: median(out.stepSeconds.slice(SETTINGS.firstTimedStep - 1)) };
}

/** One skd run of `steps` steps in its own process (a fresh backend, as a user's run has). */
function skd(dir, sampler, steps) {
  const child = `
    const { applyOverrides, buildRun, configBaseDir, readConfigFile } = require('@skd/config');
    const { Trainer } = require('@skd/trainer');
    (async () => {
      const hf = (name) => JSON.stringify({ kind: 'hf', options: { path: ${JSON.stringify(dir)} + '/' + name } });
      const raw = applyOverrides(readConfigFile(${JSON.stringify(CONFIG)}), [
        'student=' + hf('student-1k'), 'teacher=' + hf('teacher'),
        'tokenizer=' + JSON.stringify({ kind: 'hf', options: { path: ${JSON.stringify(dir)} + '/student-1k' } }),
        'sampler=' + ${JSON.stringify(JSON.stringify(sampler))}, 'divergence={"kind":"forward-kl"}',
        'dataset.options.limit=${SETTINGS.examples}', 'training.batchSize=${SETTINGS.batch}', 'training.gradientAccumulation=1',
        'training.steps=${steps}', 'training.evalEvery=0', 'training.checkpointEvery=0', 'training.evalLimit=1', 'training.maxNewTokens=4',
      ]);
      const run = await buildRun(raw, { baseDir: configBaseDir(${JSON.stringify(CONFIG)}), source: 'bench:peers' });
      const trainer = new Trainer(run);
      const events = [];
      trainer.events$.subscribe((e) => e.type === 'step' && events.push(e));
      try { await trainer.run(); } finally { trainer.dispose(); run.dispose(); }
      const mean = (key) => events.reduce((s, e) => s + (e.sampler[key] ?? 0), 0) / events.length;
      process.stdout.write(JSON.stringify({ stepSeconds: events.map((e) => e.seconds), acceptanceRate: mean('acceptanceRate'), teacherPassesPerToken: mean('teacherPassesPerToken'), meanDraftBlock: mean('meanDraftBlock'), backend: run.backend.short }) + '\\n');
    })().catch((e) => { process.stderr.write(e.stack + '\\n'); process.exit(1); });`;
  const result = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', cwd: REPO, maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`skd ${sampler.kind} failed (${result.status}): ${result.stderr.slice(-3000)}`);
  const out = JSON.parse(result.stdout.trim().split('\n').pop());
  return { ...out, seconds: median(out.stepSeconds.slice(SETTINGS.firstTimedStep - 1)) };
}

async function comparePeers({ rounds = 2, steps = 40 } = {}) {
  if (!fs.existsSync(PYTHON)) throw new Error(`no ${PYTHON}: bash tools/setup.sh makes the reference environment (with TRL)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-peers-'));
  try {
    exportModels(dir);
    writePrompts(path.join(dir, 'prompts.jsonl'), SETTINGS.examples);
    const template = JSON.parse(fs.readFileSync(CONFIG, 'utf8')).dataset.options.template;
    const samplers = {
      'skd on-policy KD': { kind: 'on-policy', options: { maxNewTokens: SETTINGS.newTokens } },
      'skd SKD': { kind: 'skd', options: { topK: 5, draftBlock: 5, maxNewTokens: SETTINGS.newTokens } },
      'skd SKD, adaptive blocks': { kind: 'skd', options: { topK: 5, draftBlock: 5, maxDraftBlock: 32, maxNewTokens: SETTINGS.newTokens } },
    };
    const results = { trl: [], 'skd on-policy KD': [], 'skd SKD': [], 'skd SKD, adaptive blocks': [] };
    let threads;
    for (let r = 0; r < rounds; r++) {
      const counts = r === 0 ? Array.from({ length: os.cpus().length }, (_, i) => i + 1) : [threads];
      const tried = counts.map((t) => trl(dir, steps, t, template));
      tried.forEach((t) => log(`round ${r + 1}: TRL GKDTrainer ${t.trl}, ${t.threads} thread(s): ${t.seconds.toFixed(3)} s/step`));
      const best = [...tried].sort((a, b) => a.seconds - b.seconds)[0];
      threads ??= best.threads;
      results.trl.push(tried.find((t) => t.threads === threads));
      for (const [name, sampler] of Object.entries(samplers)) {
        const out = skd(dir, sampler, steps);
        results[name].push(out);
        log(
          `round ${r + 1}: ${name}: ${out.seconds.toFixed(3)} s/step${sampler.kind === 'skd' ? ` (acceptance ${out.acceptanceRate.toFixed(2)}, ${out.teacherPassesPerToken.toFixed(2)} teacher passes per token, mean block ${out.meanDraftBlock.toFixed(1)})` : ''}`,
        );
      }
    }
    const trlSeconds = median(results.trl.map((x) => x.seconds));
    const rows = Object.entries(results).map(([name, rs]) => {
      const seconds = median(rs.map((x) => x.seconds));
      return {
        system: name,
        secondsPerStep: seconds,
        speedVsTrl: trlSeconds / seconds,
        ...(name === 'trl' ? { threads, version: rs[0].trl, torch: rs[0].torch } : { backend: rs[0].backend }),
        ...(name.startsWith('skd SKD')
          ? {
              acceptanceRate: median(rs.map((x) => x.acceptanceRate)),
              teacherPassesPerToken: median(rs.map((x) => x.teacherPassesPerToken)),
              meanDraftBlock: median(rs.map((x) => x.meanDraftBlock)),
            }
          : {}),
      };
    });
    return { settings: { ...SETTINGS, steps, rounds, models: 'experiments/arithmetic teacher and student-1k, exported by skd export' }, rows };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  comparePeers({ rounds: Number(option('rounds', 2)), steps: Number(option('steps', 40)) })
    .then((result) => {
      log('');
      log(`settings: ${JSON.stringify(result.settings)}`);
      log('system                              s/step   vs TRL');
      for (const row of result.rows)
        log(
          `${(row.system === 'trl' ? `TRL GKDTrainer ${row.version} (${row.threads} thread${row.threads > 1 ? 's' : ''})` : row.system).padEnd(34)}${row.secondsPerStep.toFixed(3).padStart(8)}${row.speedVsTrl.toFixed(2).padStart(9)}`,
        );
      process.stdout.write(`${JSON.stringify({ peers: result })}\n`);
    })
    .catch((error) => {
      process.stderr.write(`${error.stack}\n`);
      process.exit(1);
    });
}

module.exports = { comparePeers };
