#!/usr/bin/env node
// Lanes: how much distillation two skd processes at once get through, against one. The workload is
// the arithmetic main job's SKD step (committed teacher and student, batch 8, 160 new tokens, the
// real Trainer); each lane is its own process. Configurations, each measured as total steps per
// second over the lanes' median step times: one lane on one core, one lane on every core (the
// default), two lanes with one thread each (SKD_THREADS=1, what experiments/paper-table/run.sh sets),
// the same two lanes each pinned to its own core (taskset: a lane's helper threads, V8's compiler and
// collector among them, then never run on the other lane's core), two lanes left at their defaults
// (every lane on every core: more busy threads than cores), and the default one lane and two lanes
// again with libgomp's spinning waits (GOMP_SPINCOUNT=300000, its default, which skd used before it
// chose passive waiting), alternating over rounds.
// Options: --steps=N (measured steps per lane, default 6), --rounds=N (default 2, alternating),
// --no-spinning (leave out the spinning-wait configurations, the slowest to run).
// The last line is one JSON object.
const { execFileSync, spawn } = require('node:child_process');
const os = require('node:os');

const flag = (name) => process.argv.includes(`--${name}`);
const option = (name, fallback) => (process.argv.find((a) => a.startsWith(`--${name}=`)) ?? `=${fallback}`).split('=')[1];
const log = (line) => process.stderr.write(`${line}\n`);
const { median } = require('./harness.cjs');

if (flag('child')) {
  // One lane: SKD steps of the main job, reported as the trainer times them.
  (async () => {
    const { selectBackend } = require('@skd/backend');
    await selectBackend({ backend: 'wasm' });
    const { distillSteps } = require('./distill-workload.cjs');
    const result = await distillSteps({ kind: 'skd', options: { topK: 5, draftBlock: 5, maxNewTokens: 160 } }, Number(option('steps', 6)));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  })().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else {
  const cores = os.cpus().length;
  const hasTaskset = (() => {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  /** Runs `lanes` processes at once with `env` (lane i on core i when `pin`); resolves each lane's seconds per step. */
  const runLanes = (lanes, base, env, steps, pin) =>
    Promise.all(
      Array.from(
        { length: lanes },
        (_, lane) =>
          new Promise((resolve, reject) => {
            const command = [process.execPath, __filename, '--child', `--steps=${steps}`];
            const argv = pin ? ['taskset', '-c', String(lane % cores), ...command] : command;
            const child = spawn(argv[0], argv.slice(1), { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            child.stdout.on('data', (d) => (out += d));
            child.stderr.on('data', (d) => (err += d));
            child.on('exit', (code) =>
              code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()).secondsPerStep) : reject(new Error(`lane failed (${code}): ${err.slice(-2000)}`)),
            );
          }),
      ),
    );

  (async () => {
    const steps = Number(option('steps', 6));
    const rounds = Number(option('rounds', 2));
    // Without SKD_THREADS every lane sizes its pool to every core; skd chooses how threads wait.
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !['SKD_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'].includes(key)));
    const spinning = { GOMP_SPINCOUNT: '300000' };
    const configs = [
      { name: `1 lane, ${cores} threads (default)`, lanes: 1, env: {} },
      { name: '1 lane, 1 thread', lanes: 1, env: { SKD_THREADS: '1' } },
      { name: '2 lanes, 1 thread each (SKD_THREADS=1)', lanes: 2, env: { SKD_THREADS: '1' } },
      ...(hasTaskset ? [{ name: '2 lanes, 1 thread each, pinned (taskset)', lanes: 2, env: { SKD_THREADS: '1' }, pin: true }] : []),
      { name: `2 lanes, default threads (${cores} each)`, lanes: 2, env: {} },
      ...(flag('no-spinning')
        ? []
        : [
            { name: `1 lane, ${cores} threads, spinning waits`, lanes: 1, env: spinning },
            { name: `2 lanes, ${cores} threads each, spinning waits`, lanes: 2, env: spinning },
          ]),
    ];
    const results = new Map(configs.map((c) => [c.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const config of configs) {
        const perLane = await runLanes(config.lanes, base, config.env, steps, config.pin === true);
        const throughput = perLane.reduce((s, secs) => s + 1 / secs, 0);
        results.get(config.name).push({ perLane, throughput });
        log(`round ${r + 1}: ${config.name}: ${perLane.map((s) => `${s.toFixed(3)} s/step`).join(', ')} -> ${throughput.toFixed(2)} steps/s`);
      }
    }
    const oneLane = median(results.get(configs[0].name).map((x) => x.throughput));
    const rows = configs.map((c) => {
      const rs = results.get(c.name);
      const throughput = median(rs.map((x) => x.throughput));
      return {
        config: c.name,
        lanes: c.lanes,
        secondsPerStep: median(rs.flatMap((x) => x.perLane)),
        stepsPerSecond: throughput,
        vsOneLane: throughput / oneLane,
      };
    });
    log('');
    log(`${'configuration'.padEnd(48)}s/step per lane   steps/s   vs one lane`);
    for (const row of rows)
      log(
        `${row.config.padEnd(48)}${row.secondsPerStep.toFixed(3).padStart(15)}${row.stepsPerSecond.toFixed(2).padStart(10)}${row.vsOneLane.toFixed(2).padStart(13)}`,
      );
    process.stdout.write(
      `${JSON.stringify({ lanes: { workload: 'experiments/arithmetic SKD step (topK 5, draft block 5, batch 8, 160 new tokens)', cores, steps, rounds, rows } })}\n`,
    );
  })().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
}
