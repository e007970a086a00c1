#!/usr/bin/env node
// `npm run bench:peers:real`: skd against TRL's stable DistillationTrainer where users distil, at real
// model shapes: a teacher shaped like SmolLM2-360M (32 layers, d=960, 15/5 heads, d_ff 2560) and a
// student shaped like SmolLM2-135M (30 layers, d=576, 9/3 heads, d_ff 1536), random weights written by
// transformers (.venv) in bf16, a byte-level BPE of 3,200 words, tied embeddings; 200 prompts of 20-40
// words. Batch 4, 64 new tokens, forward KL, temperature 1, AdamW 1e-5, fully on-policy, float32 on both
// sides. skd runs `skd distill` (native backend) as on-policy KD, as SKD at low acceptance (top-K 25: on
// random weights the teacher rejects nearly every draft) and at high acceptance (top-K 3000 of 3,200),
// and on-policy KD with training.checkpointLayers. Each run takes --steps steps (default 4); its step
// time is the median of the steps after the first, its memory the process's peak resident set. Round 1
// tries TRL at every thread count and keeps the fastest; rounds alternate TRL and the skd runs. The CPU
// model and vector ISA are printed with the results (they change between machines of this kind).
//   node tools/bench/peers-real.cjs [--rounds=2] [--steps=4] [--dir=/tmp/skd-peers-real] [--only=NAME,...: skd rows whose
//   names contain one of these, e.g. --only=bf16, or are one of them, e.g. "--only==skd on-policy KD|=skd SKD, top-K 3000 (high acceptance)"]
//   [--node-flags="--single-threaded-gc": V8 flags for the skd processes]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { cpu, median } = require('./harness.cjs');

const REPO = path.resolve(__dirname, '../..');
const PYTHON = path.join(REPO, '.venv/bin/python');
const REFERENCE = path.join(REPO, 'tools/reference/hf_reference.py');
const CLI = path.join(REPO, 'packages/cli/dist/main.js');
const option = (name, fallback) => {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`));
  return given === undefined ? String(fallback) : given.slice(name.length + 3);
};
const log = (line) => process.stderr.write(`${line}\n`);
// --node-flags="--single-threaded-gc": V8 flags for the skd processes (docs/performance.md: V8's
// concurrent GC threads and the kernels' threads share the two cores).
const NODE_FLAGS = option('node-flags', '').split(' ').filter(Boolean);

const SETTINGS = {
  batch: 4,
  newTokens: 64,
  learningRate: 1e-5,
  examples: 200,
  vocab: 3200,
  divergence: 'forward KL (TRL: generalized JSD, beta 0)',
  temperature: 1,
};
const LLAMA = {
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: true,
  head_dim: 64,
  rms_norm_eps: 1e-5,
  rope_parameters: { rope_type: 'default', rope_theta: 100000.0 },
};
const SHAPES = {
  teacher: { ...LLAMA, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5 },
  student: { ...LLAMA, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3 },
};

function python(args, what) {
  const result = spawnSync(PYTHON, args, {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  if (result.status !== 0) throw new Error(`${what} failed (${result.status}): ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

/** The folders and data, written once per --dir. */
function prepare(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const once = (name, make) => {
    if (!fs.existsSync(path.join(dir, name, '.done'))) {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      make(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, '.done'), '');
    }
    return path.join(dir, name);
  };
  const tokenizer = once('tokenizer', (out) => python([REFERENCE, 'tokenizer', 'gpt2', out, '--vocab', String(SETTINGS.vocab)], 'tokenizer'));
  const model = (role, seed) =>
    once(role, (out) =>
      python(
        [
          REFERENCE,
          'model',
          'llama',
          out,
          '--tokenizer',
          tokenizer,
          '--dtype',
          'bfloat16',
          '--context',
          '2048',
          '--seed',
          String(seed),
          '--shape',
          JSON.stringify(SHAPES[role]),
        ],
        `${role} model`,
      ),
    );
  const teacher = model('teacher', 1);
  const student = model('student', 2);
  const data = once('data', (out) => {
    fs.mkdirSync(out);
    const words = 'the of and to in a is that for it as with was on be by at this have from or an which one all were when we there can more'.split(' ');
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    const text = (min, max) => Array.from({ length: min + Math.floor(next() * (max - min + 1)) }, () => words[Math.floor(next() * words.length)]).join(' ');
    for (const [split, n] of [
      ['train', SETTINGS.examples],
      ['eval', 4],
      ['test', 4],
    ])
      fs.writeFileSync(
        path.join(out, `${split}.jsonl`),
        `${Array.from({ length: n }, () => JSON.stringify({ prompt: text(20, 40), response: text(20, 40) })).join('\n')}\n`,
      );
  });
  return { tokenizer, teacher, student, data };
}

function trl(folders, steps, threads) {
  const out = python(
    [
      path.join(__dirname, 'trl_distill.py'),
      '--student',
      folders.student,
      '--teacher',
      folders.teacher,
      '--data',
      path.join(folders.data, 'train.jsonl'),
      '--batch',
      String(SETTINGS.batch),
      '--new-tokens',
      String(SETTINGS.newTokens),
      '--steps',
      String(steps),
      '--threads',
      String(threads),
      '--learning-rate',
      String(SETTINGS.learningRate),
    ],
    'trl_distill.py',
  );
  const result = JSON.parse(out.trim().split('\n').pop());
  return { ...result, seconds: median(result.stepSeconds.slice(1)) };
}

/** One `skd distill` of `steps` steps in its own process; its step times, SKD statistics and peak memory. */
function skd(folders, dir, name, sampler, training, steps, teacherDtype = 'float32') {
  const runDir = path.join(dir, 'runs', name.replace(/[^a-z0-9]+/gi, '-'));
  fs.rmSync(runDir, { recursive: true, force: true });
  const config = {
    seed: 1,
    backend: 'native',
    tokenizer: { kind: 'hf', options: { path: folders.student } },
    teacher: { kind: 'hf', options: { path: folders.teacher, dtype: teacherDtype } },
    student: { kind: 'hf', options: { path: folders.student } },
    sampler,
    divergence: { kind: 'forward-kl' },
    dataset: { kind: 'jsonl', options: { files: ['train', 'eval', 'test'].reduce((f, s) => ({ ...f, [s]: path.join(folders.data, `${s}.jsonl`) }), {}) } },
    training: {
      steps,
      batchSize: SETTINGS.batch,
      learningRate: SETTINGS.learningRate,
      evalEvery: 0,
      checkpointEvery: 0,
      testLimit: 1,
      maxNewTokens: 4,
      ...training,
    },
  };
  const file = path.join(dir, `${path.basename(runDir)}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const result = spawnSync(process.execPath, [...NODE_FLAGS, CLI, 'distill', file, '--out', runDir], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`skd ${name} failed (${result.status}): ${result.stderr.slice(-3000)}`);
  const events = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'step');
  const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
  const mean = (key) => events.reduce((s, e) => s + (e.sampler?.[key] ?? 0), 0) / events.length;
  const timed = events.slice(1);
  return {
    seconds: median(timed.map((e) => e.seconds)),
    phases: Object.fromEntries(['sample', 'teacher', 'student', 'update'].map((k) => [k, median(timed.map((e) => e.phases?.[k] ?? NaN))])),
    losses: events.map((e) => e.loss),
    acceptanceRate: mean('acceptanceRate'),
    teacherPassesPerToken: mean('teacherPassesPerToken'),
    peakRssBytes: summary.peakMemoryBytes,
    backend: (result.stderr.split('\n').find((l) => /^backend/.test(l)) ?? '').trim(),
  };
}

function compare({ rounds, steps, dir, only }) {
  if (!fs.existsSync(PYTHON)) throw new Error(`no ${PYTHON}: bash tools/setup.sh makes the reference environment (with TRL)`);
  const folders = prepare(dir);
  const newTokens = SETTINGS.newTokens;
  // Float32 teachers, as TRL's. The bf16 rows hold the teacher as its folder stores it (skd's default
  // for a teacher: the same weight values, widened in the kernels, so the same math as float32); the
  // last one also trades time for memory: skd's smallest full fine-tune of this pair.
  const runs = {
    'skd on-policy KD': [{ kind: 'on-policy', options: { maxNewTokens: newTokens } }, {}],
    'skd on-policy KD, checkpointLayers': [{ kind: 'on-policy', options: { maxNewTokens: newTokens } }, { checkpointLayers: true }],
    'skd SKD, top-K 25 (low acceptance)': [{ kind: 'skd', options: { topK: 25, draftBlock: 5, maxNewTokens: newTokens } }, {}],
    'skd SKD, top-K 3000 (high acceptance)': [{ kind: 'skd', options: { topK: 3000, draftBlock: 5, maxNewTokens: newTokens } }, {}],
    // The same samples with fewer teacher passes: blocks double after rounds that keep every draft.
    'skd SKD, top-K 3000 (high acceptance), adaptive blocks up to 32': [
      { kind: 'skd', options: { topK: 3000, draftBlock: 5, maxDraftBlock: 32, maxNewTokens: newTokens } },
      {},
    ],
    'skd on-policy KD, bf16 teacher': [{ kind: 'on-policy', options: { maxNewTokens: newTokens } }, {}, 'bfloat16'],
    'skd SKD, top-K 3000 (high acceptance), bf16 teacher': [{ kind: 'skd', options: { topK: 3000, draftBlock: 5, maxNewTokens: newTokens } }, {}, 'bfloat16'],
    'skd on-policy KD, bf16 teacher, checkpointLayers, lossChunk 256': [
      { kind: 'on-policy', options: { maxNewTokens: newTokens } },
      { checkpointLayers: true, lossChunk: 256 },
      'bfloat16',
    ],
  };
  const wanted = (name, part) => (part.startsWith('=') ? name === part.slice(1) : name.includes(part));
  if (only) for (const name of Object.keys(runs)) if (!only.some((part) => wanted(name, part))) delete runs[name];
  const results = { trl: [], ...Object.fromEntries(Object.keys(runs).map((k) => [k, []])) };
  let threads;
  for (let r = 0; r < rounds; r++) {
    const counts = r === 0 ? Array.from({ length: os.cpus().length }, (_, i) => i + 1) : [threads];
    const tried = counts.map((t) => trl(folders, steps, t));
    tried.forEach((t) =>
      log(
        `round ${r + 1}: TRL DistillationTrainer ${t.trl}, ${t.threads} thread(s): ${t.seconds.toFixed(2)} s/step, peak ${(t.peakRssBytes / 1e9).toFixed(2)} GB, losses ${t.losses.map((l) => l.toFixed(3)).join(' ')}`,
      ),
    );
    threads ??= [...tried].sort((a, b) => a.seconds - b.seconds)[0].threads;
    results.trl.push(tried.find((t) => t.threads === threads));
    for (const [name, [sampler, training, teacherDtype]] of Object.entries(runs)) {
      const out = skd(folders, dir, name, sampler, training, steps, teacherDtype);
      results[name].push(out);
      log(
        `round ${r + 1}: ${name}: ${out.seconds.toFixed(2)} s/step (${Object.entries(out.phases)
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(
            ', ',
          )}), peak ${(out.peakRssBytes / 1e9).toFixed(2)} GB, losses ${out.losses.map((l) => l.toFixed(3)).join(' ')}${sampler.kind === 'skd' ? `, acceptance ${out.acceptanceRate.toFixed(3)}, ${out.teacherPassesPerToken.toFixed(2)} teacher passes per token` : ''}`,
      );
    }
  }
  const trlSeconds = median(results.trl.map((x) => x.seconds));
  const rows = Object.entries(results).map(([name, rs]) => {
    const seconds = rs.map((x) => x.seconds);
    return {
      system: name === 'trl' ? `TRL DistillationTrainer ${rs[0].trl} (torch ${rs[0].torch}, ${threads} thread${threads > 1 ? 's' : ''})` : name,
      secondsPerStep: median(seconds),
      spread: [Math.min(...seconds), Math.max(...seconds)],
      speedVsTrl: trlSeconds / median(seconds),
      peakRssGB: Math.max(...rs.map((x) => x.peakRssBytes)) / 1e9,
      ...(name === 'trl' ? {} : { phases: Object.fromEntries(Object.keys(rs[0].phases).map((k) => [k, median(rs.map((x) => x.phases[k]))])) }),
      ...(name.startsWith('skd SKD')
        ? { acceptanceRate: median(rs.map((x) => x.acceptanceRate)), teacherPassesPerToken: median(rs.map((x) => x.teacherPassesPerToken)) }
        : {}),
      ...(name === 'trl' ? {} : { backend: rs[0].backend }),
    };
  });
  return {
    cpu: cpu(),
    settings: {
      ...SETTINGS,
      steps,
      rounds,
      shapes: 'SmolLM2-360M teacher, SmolLM2-135M student (random weights, bf16 folders, read as float32 unless a row says bf16)',
      ...(NODE_FLAGS.length ? { skdNodeFlags: NODE_FLAGS.join(' ') } : {}),
    },
    rows,
  };
}

if (require.main === module) {
  try {
    const result = compare({
      rounds: Number(option('rounds', 2)),
      steps: Number(option('steps', 4)),
      dir: option('dir', path.join(os.tmpdir(), 'skd-peers-real')),
      // Names hold commas: a list with a | is split on it, any other on commas.
      ...(option('only', '') ? { only: option('only', '').split(option('only', '').includes('|') ? '|' : ',') } : {}),
    });
    log('');
    log(`CPU: ${result.cpu.model} (${result.cpu.isa}, ${result.cpu.cores} cores)`);
    log(`settings: ${JSON.stringify(result.settings)}`);
    log('system                                                   s/step (spread)       vs TRL   peak GB');
    for (const row of result.rows)
      log(
        `${row.system.padEnd(64)}${row.secondsPerStep.toFixed(2).padStart(8)} (${row.spread.map((s) => s.toFixed(1)).join('-')})`.padEnd(88) +
          `${row.speedVsTrl.toFixed(2).padStart(7)}${row.peakRssGB.toFixed(2).padStart(10)}`,
      );
    log('');
    log(
      'where the skd steps go (medians, seconds): sample (generation, SKD verification), teacher (its pass for the loss), student (forward, loss, backward), update (clip, AdamW)',
    );
    for (const row of result.rows.filter((r) => r.phases))
      log(
        `${row.system.padEnd(64)}${Object.entries(row.phases)
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ')}`,
      );
    const bySystem = new Map(result.rows.map((r) => [r.system, r.secondsPerStep]));
    for (const [skdRow, onPolicy] of [
      ['skd SKD, top-K 3000 (high acceptance)', 'skd on-policy KD'],
      ['skd SKD, top-K 3000 (high acceptance), adaptive blocks up to 32', 'skd on-policy KD'],
      ['skd SKD, top-K 3000 (high acceptance), bf16 teacher', 'skd on-policy KD, bf16 teacher'],
    ])
      if (bySystem.has(skdRow) && bySystem.has(onPolicy)) log(`${skdRow} / ${onPolicy}: ${(bySystem.get(skdRow) / bySystem.get(onPolicy)).toFixed(2)}x`);
    process.stdout.write(`${JSON.stringify({ peersReal: result })}\n`);
  } catch (error) {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  }
}

module.exports = { compare, prepare };
