import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BIN, DATA, exited, skd, start, tinyConfig, tmp, waitFor } from './testing/cli';
import { chromiumRequired, drawnCharts, renderPage } from './testing/chromium';

// End-to-end: the built `skd` binary, as a user runs it (build first: nx runs build before test).
describe('skd distill / train (end to end)', () => {
  it('runs a distillation and writes the run directory: config, metrics, checkpoints, eval outputs, summary, model', () => {
    const dir = tmp();
    const result = skd(['distill', tinyConfig(dir), '--out', 'runs/a'], dir);
    expect(result.status).toBe(0);
    // stderr: the backend line and progress only; the run's log is on stdout.
    expect(result.stderr).toMatch(/^backend wasm/);
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.stdout).toMatch(/checkpoint @ step 2[\s\S]*run ended at step 4: completed/);
    const run = path.join(dir, 'runs/a');
    expect(fs.readdirSync(run).sort()).toEqual(['checkpoints', 'config.json', 'eval', 'metrics.jsonl', 'model', 'summary.json']);
    const events = fs
      .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2, 3, 4]);
    expect(events.find((e) => e.type === 'step').sampler.acceptanceRate).toEqual(expect.any(Number));
    const predictions = fs
      .readFileSync(path.join(run, 'eval', 'test-step-000004.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(Object.keys(predictions[0]).sort()).toEqual(['id', 'prediction', 'prompt', 'reference']);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'summary.json'), 'utf8'))).toMatchObject({
      steps: 4,
      sampler: 'skd',
      finalMetrics: { exactMatch: expect.any(Number) },
    });
  });

  it('evaluates a seeded sample of the test split by default, the first examples with training.evalOrder "file"', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 1, evalEvery: 0 });
    const ids = (run: string) =>
      fs
        .readFileSync(path.join(dir, 'runs', run, 'eval/test-step-000001.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id as string);
    expect(skd(['distill', config, '--out', 'runs/file', '--set', 'training.evalOrder=file'], dir).status).toBe(0);
    expect(ids('file')).toEqual(['test.jsonl:1', 'test.jsonl:2', 'test.jsonl:3', 'test.jsonl:4']);
    expect(skd(['distill', config, '--out', 'runs/sample'], dir).status).toBe(0);
    expect(ids('sample')).toHaveLength(4);
    expect(ids('sample')).not.toEqual(ids('file'));
    const evaluated = skd(['eval', config, '--limit', '4', '--set', 'training.evalOrder=file', '--out', 'evaluated'], dir);
    expect(evaluated.status).toBe(0);
    expect(
      fs
        .readFileSync(path.join(dir, 'evaluated/eval/test-step-000000.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(ids('file'));
  });

  it('saves a config that runs as is from anywhere: it records the folder its relative paths mean', () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'data'));
    for (const f of ['train.jsonl.gz', 'eval.jsonl', 'test.jsonl']) fs.copyFileSync(path.join(DATA, f), path.join(dir, 'data', f));
    const config = JSON.parse(fs.readFileSync(tinyConfig(dir, { steps: 1 }), 'utf8'));
    config.dataset.options.files = { train: 'data/train.jsonl.gz', eval: 'data/eval.jsonl', test: 'data/test.jsonl' };
    fs.writeFileSync(path.join(dir, 'relative.json'), JSON.stringify(config));
    expect(skd(['distill', 'relative.json', '--out', 'runs/a'], dir).status).toBe(0);
    const saved = path.join(dir, 'runs/a/config.json');
    expect(JSON.parse(fs.readFileSync(saved, 'utf8')).baseDir).toBe(dir);
    const again = skd(['eval', saved, '--limit', '2', '--json'], os.tmpdir());
    expect(again.stderr).not.toMatch(/error|warning/i);
    expect(again.status).toBe(0);
  });

  it('refuses an existing run directory without --resume, and a resume with another config, changing nothing', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2 });
    expect(skd(['distill', config, '--out', 'runs/a'], dir).status).toBe(0);
    const before = fs.readFileSync(path.join(dir, 'runs/a/metrics.jsonl'), 'utf8');
    const again = skd(['distill', config, '--out', 'runs/a'], dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('already holds a run. Fix: pass --resume to continue it, or choose another --out');
    const changed = skd(['distill', config, '--out', 'runs/a', '--resume', '--set', 'training.learningRate=0.5'], dir);
    expect(changed.status).toBe(2);
    expect(changed.stderr).toContain('cannot resume');
    expect(changed.stderr).toContain('changed: training.learningRate)');
    expect(fs.readFileSync(path.join(dir, 'runs/a/metrics.jsonl'), 'utf8')).toBe(before);
  });

  it('resumes when only the $comment changed: it describes the run, it is not part of it', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2 });
    expect(skd(['distill', config, '--out', 'runs/a'], dir).status).toBe(0);
    const reworded = skd(['distill', config, '--out', 'runs/a', '--resume', '--set', '$comment=reworded'], dir);
    expect(reworded.stderr).not.toContain('cannot resume');
    expect(reworded.status).toBe(0);
  });

  it('resumes a run whose saved config predates an option with a default (as after an upgrade of skd)', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2 });
    expect(skd(['distill', config, '--out', 'runs/a'], dir).status).toBe(0);
    // A run saved by a version without training.evalOrder and sampler defaults filled in differently.
    const saved = path.join(dir, 'runs/a/config.json');
    const older = JSON.parse(fs.readFileSync(saved, 'utf8'));
    expect(older.training.evalOrder).toBeDefined();
    delete older.training.evalOrder;
    fs.writeFileSync(saved, JSON.stringify(older));
    const resumed = skd(['distill', config, '--out', 'runs/a', '--resume', '--set', 'training.steps=3'], dir);
    expect(resumed.stderr).toContain('changed: training.steps)');
    const same = skd(['distill', config, '--out', 'runs/a', '--resume'], dir);
    expect(same.stderr).not.toContain('cannot resume');
    expect(same.status).toBe(0);
  });

  it('runs a method from a folder outside the workspace (CommonJS and ES module) that builds on a built-in sampler', () => {
    const dir = tmp(); // under the system temp folder: no node_modules of skd above it
    fs.cpSync(path.resolve(__dirname, '../../../docs/examples/skd-argmax-warmup'), path.join(dir, 'ext/skd-argmax-warmup'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'ext/greedy-on-policy.mjs'),
      [
        "import { z } from 'zod';",
        "import { defineComponent } from '@skd/core';",
        "import { onPolicyEntry, onPolicySamplerOptions } from '@skd/samplers';",
        "export default defineComponent({ component: 'sampler', kind: 'greedy-on-policy', summary: 'on-policy KD, greedy student',",
        '  options: z.strictObject({ maxNewTokens: z.number().int().default(6) }),',
        '  create: (o, deps) => onPolicyEntry.create(onPolicySamplerOptions({ maxNewTokens: o.maxNewTokens, sampling: { greedy: true } }), deps) });',
      ].join('\n'),
    );
    const config = JSON.parse(fs.readFileSync(tinyConfig(dir), 'utf8'));
    const withSampler = (name: string, sampler: object) => {
      const file = path.join(dir, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify({ ...config, sampler }));
      return file;
    };
    const common = withSampler('common', { kind: 'skd-argmax-warmup', module: 'ext/skd-argmax-warmup/index.js', options: { topK: 5, maxNewTokens: 6 } });
    const esm = withSampler('esm', { kind: 'greedy-on-policy', module: 'ext/greedy-on-policy.mjs' });
    for (const [file, out] of [
      [common, 'runs/common'],
      [esm, 'runs/esm'],
    ] as const) {
      const result = skd(['distill', file, '--out', out], dir);
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.status).toBe(0);
      const summary = JSON.parse(fs.readFileSync(path.join(dir, out, 'summary.json'), 'utf8'));
      expect(summary.steps).toBe(4);
    }
    // The wrapped SKD sampler reports its acceptance; the argmax warm-up ran for the first half.
    const steps = fs
      .readFileSync(path.join(dir, 'runs/common/metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'step');
    expect(steps.every((e) => typeof e.sampler.acceptanceRate === 'number')).toBe(true);
    // Installed as a package (node_modules beside the config), it is named by its package name.
    fs.cpSync(path.join(dir, 'ext/skd-argmax-warmup'), path.join(dir, 'node_modules/skd-argmax-warmup'), { recursive: true });
    const byName = withSampler('by-name', { kind: 'skd-argmax-warmup', module: 'skd-argmax-warmup', options: { topK: 5, maxNewTokens: 6 } });
    expect(skd(['check', byName], dir).status).toBe(0);
    // skd check builds the ES module's sampler too, and a bad option is named with the module's schema.
    expect(skd(['check', esm], dir).status).toBe(0);
    const bad = skd(['check', common, '--set', 'sampler.options.warmupFractio=0.2'], dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('sampler.options.warmupFractio: unknown key (did you mean "warmupFraction"?)');
  });

  it('after SIGKILL, --resume ends with exactly the weights of an uninterrupted run', async () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 24, checkpointEvery: 2 });
    expect(skd(['distill', config, '--out', 'runs/straight'], dir).status).toBe(0);
    const child = start(['distill', config, '--out', 'runs/killed'], dir);
    await waitFor(() => fs.existsSync(path.join(dir, 'runs/killed/checkpoints/step-000004')));
    child.kill('SIGKILL');
    await exited(child);
    expect(fs.existsSync(path.join(dir, 'runs/killed/summary.json'))).toBe(false);
    const resumed = skd(['distill', config, '--out', 'runs/killed', '--resume'], dir);
    expect(resumed.status).toBe(0);
    const weights = (run: string) => fs.readFileSync(path.join(dir, 'runs', run, 'model', 'model.safetensors'));
    expect(weights('killed').equals(weights('straight'))).toBe(true);
    // The summary covers the whole run once, replayed steps replaced: equal but for names, timing and measured memory.
    const summary = (run: string) => {
      const {
        run: _name,
        group: _group,
        seconds: _seconds,
        peakMemoryBytes: _peak,
        ...rest
      } = JSON.parse(fs.readFileSync(path.join(dir, 'runs', run, 'summary.json'), 'utf8'));
      return rest;
    };
    expect(summary('killed')).toEqual(summary('straight'));
    expect(summary('killed').meanAcceptanceRate).toEqual(expect.any(Number));
  });

  it('every command takes an ES-module component from outside the workspace: check (config and sweep), sweep, eval, generate, report --baseline', () => {
    const dir = tmp(); // no node_modules of skd above it
    fs.mkdirSync(path.join(dir, 'ext'));
    fs.writeFileSync(
      path.join(dir, 'ext/digit-count.mjs'),
      [
        "import { z } from 'zod';",
        "import { defineComponent } from '@skd/core';",
        'const digits = (text) => (text.match(/[0-9]/g) ?? []).length;',
        "export default defineComponent({ component: 'evaluator', kind: 'digit-count', summary: 'digits per prediction',",
        '  options: z.strictObject({}),',
        "  create: () => ({ name: 'digit-count',",
        '    async evaluate(predictions) { return { digits: predictions.reduce((n, p) => n + digits(p.text), 0) / Math.max(1, predictions.length) }; },',
        '    async statistics(predictions) { return { rows: predictions.map((p) => [digits(p.text)]), score: (sums, count) => ({ digits: count ? sums[0] / count : 0 }) }; } }) });',
      ].join('\n'),
    );
    const config = JSON.parse(fs.readFileSync(tinyConfig(dir, { steps: 2, evalEvery: 0, checkpointEvery: 0 }), 'utf8'));
    config.evaluators.push({ kind: 'digit-count', module: './ext/digit-count.mjs' });
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config));
    fs.writeFileSync(path.join(dir, 'sweep.json'), JSON.stringify({ base: 'run.json', out: 'sweep', grid: { seed: [1, 2] } }));
    const ok = (args: string[]) => {
      const result = skd(args, dir);
      expect({ args, stderr: result.stderr.split('\n').filter((l) => /error/i.test(l)) }).toEqual({ args, stderr: [] });
      expect(result.status).toBe(0);
      return result;
    };
    expect(ok(['check', 'run.json']).stdout).toMatch(/^evaluators .*digit-count/m);
    expect(ok(['check', 'sweep.json']).stdout).toContain('sweep ok: sweep.json (2 runs');
    ok(['sweep', 'sweep.json']);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'sweep/seed-1/summary.json'), 'utf8'));
    expect(summary.finalMetrics.digits).toEqual(expect.any(Number));
    const model = path.join(dir, 'sweep/seed-1/model');
    expect(
      JSON.parse(ok(['eval', 'run.json', '--set', `student={"kind":"checkpoint","options":{"path":"${model}"}}`, '--json']).stdout).metrics.digits,
    ).toEqual(expect.any(Number));
    ok(['generate', 'run.json', '--prompt', 'Tom has 3 apples.', '--max-new-tokens', '4']);
    const report = JSON.parse(ok(['report', 'sweep', '--baseline', model, '--out', 'report', '--json']).stdout);
    const baseline = report.sections[0].groups.find((g: { group: string }) => g.group.startsWith('baseline-'));
    expect(baseline.metrics.digits.mean).toEqual(expect.any(Number));
  });

  it("locks the run folder: a second process, even with --resume, is refused naming the holder; a dead holder's lock is taken over", async () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 200, checkpointEvery: 2, evalEvery: 0 });
    const child = start(['distill', config, '--out', 'runs/a'], dir);
    await waitFor(() => fs.existsSync(path.join(dir, 'runs/a/checkpoints/step-000002')));
    const second = skd(['distill', config, '--out', 'runs/a', '--resume'], dir);
    expect(second.status).toBe(2);
    expect(second.stderr).toContain(`is in use by process ${child.pid} on ${os.hostname()}`);
    child.kill('SIGKILL');
    await exited(child);
    const resumed = skd(['distill', config, '--out', 'runs/a', '--resume'], dir);
    expect(resumed.stderr).toContain(`was locked by process ${child.pid}, which is no longer running; taking it over`);
    expect(resumed.status).toBe(0);
    expect(fs.existsSync(path.join(dir, 'runs/a/run.lock'))).toBe(false);
  });

  it('reads the eval and test files before the first step: a bad record there fails at once, no run folder made', () => {
    const dir = tmp();
    const config = JSON.parse(fs.readFileSync(tinyConfig(dir), 'utf8'));
    fs.writeFileSync(
      path.join(dir, 'test.jsonl'),
      `${fs.readFileSync(path.join(DATA, 'test.jsonl'), 'utf8').split('\n').slice(0, 3).join('\n')}\n{"prompt": "1+1", "response": 2}\n`,
    );
    config.dataset.options.files.test = path.join(dir, 'test.jsonl');
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config));
    const result = skd(['distill', 'run.json', '--out', 'runs/a'], dir);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`${path.join(dir, 'test.jsonl')}:4: field "response" must be a string, got the number 2`);
    expect(fs.existsSync(path.join(dir, 'runs/a'))).toBe(false);
  });

  // A real full disk needs a tiny tmpfs, which only root may mount; elsewhere the injected failures of atomic.spec cover it.
  const mountTmpfs = (dir: string, size: string) => spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
  const canMount =
    process.getuid?.() === 0 &&
    (() => {
      const probe = tmp();
      const ok = mountTmpfs(probe, '64k');
      if (ok) spawnSync('umount', [probe]);
      return ok;
    })();
  (canMount ? it : it.skip)('on a full disk fails in one line with exit 1, leaves no partial checkpoint, and resumes once there is space', () => {
    const dir = tmp();
    const disk = path.join(dir, 'disk');
    fs.mkdirSync(disk);
    expect(mountTmpfs(disk, '320k')).toBe(true); // room for the run's files and one 190 KB checkpoint, not two
    try {
      const config = tinyConfig(dir, { steps: 4, checkpointEvery: 1, evalEvery: 0 });
      const full = skd(['distill', config, '--out', 'disk/run'], dir);
      expect(full.status).toBe(1);
      // One line of error, the last on stderr (before it: the backend line and progress).
      const errorLines = full.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('backend ') && !line.startsWith('['));
      expect(errorLines).toEqual([
        expect.stringMatching(/^error: cannot write .*\/disk\/run\/checkpoints\/step-000002\S*: no space left on device \(ENOSPC\)$/),
      ]);
      expect(fs.readdirSync(path.join(disk, 'run/checkpoints'))).toEqual(['step-000001']);
      expect(spawnSync('mount', ['-o', 'remount,size=50m', disk]).status).toBe(0);
      const resumed = skd(['distill', config, '--out', 'disk/run', '--resume'], dir);
      expect(resumed.status).toBe(0);
      expect(resumed.stdout).toContain('steps 1..4');
      expect(JSON.parse(fs.readFileSync(path.join(disk, 'run/summary.json'), 'utf8')).steps).toBe(4);
    } finally {
      spawnSync('umount', [disk]);
    }
  });

  it("names the file when a run folder's config.json is garbled, on --resume", () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2 });
    expect(skd(['distill', config, '--out', 'runs/a'], dir).status).toBe(0);
    fs.writeFileSync(path.join(dir, 'runs/a/config.json'), '{"seed": 3, "stud');
    const resumed = skd(['distill', config, '--out', 'runs/a', '--resume'], dir);
    expect(resumed.status).toBe(2);
    expect(resumed.stderr).toContain(`${path.join(dir, 'runs/a/config.json')}: cannot read the config of the run being resumed`);
  });

  it('fails in one line, exit 1, when --out cannot be written', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'file'), 'not a folder');
    const result = skd(['distill', tinyConfig(dir), '--out', 'file/run'], dir);
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(`error: cannot write ${path.join(dir, 'file/run')}: a part of the path is a file, not a folder (ENOTDIR)`);
  });

  it('on SIGINT finishes the step, writes a checkpoint and exits 130 long before the end; --resume ends with the uninterrupted weights', async () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 400, checkpointEvery: 1000, evalEvery: 0 });
    const child = start(['distill', config, '--out', 'runs/a'], dir);
    const metrics = path.join(dir, 'runs/a/metrics.jsonl');
    await waitFor(() => fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('"type":"step"'));
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    expect(child.output()).toContain('interrupted: finishing the current step and keeping what is done');
    const stoppedAt = Number(/run ended at step (\d+): cancelled/.exec(child.output())?.[1]);
    expect(stoppedAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeLessThan(400);
    expect(fs.readdirSync(path.join(dir, 'runs/a/checkpoints'))).toEqual([`step-${String(stoppedAt).padStart(6, '0')}`]);
    expect(fs.existsSync(path.join(dir, 'runs/a/summary.json'))).toBe(false);
    const resumed = skd(['distill', config, '--out', 'runs/a', '--resume'], dir);
    expect([resumed.status, resumed.stderr.slice(-500)]).toEqual([0, expect.any(String)]);
    const straight = skd(['distill', config, '--out', 'runs/straight'], dir);
    expect([straight.status, straight.stderr.slice(-500)]).toEqual([0, expect.any(String)]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'runs/a/summary.json'), 'utf8')).steps).toBe(400);
    const weights = (run: string) => fs.readFileSync(path.join(dir, 'runs', run, 'model', 'model.safetensors'));
    expect(weights('a').equals(weights('straight'))).toBe(true);
  }, 600_000);

  it('on SIGINT during skd eval stops after the current batch and exits 130, writing no run folder', async () => {
    const dir = tmp();
    const child = start(['eval', tinyConfig(dir), '--split', 'train', '--limit', '20000', '--set', 'dataset.options.limit=20000', '--out', 'evaluated'], dir);
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    expect(child.output()).toMatch(/interrupted: evaluation stopped after \d+ examples/);
    expect(fs.existsSync(path.join(dir, 'evaluated'))).toBe(false);
  }, 180_000);

  it('on SIGINT a sweep checkpoints its current run, starts no other and exits 130', async () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 400, checkpointEvery: 1000, evalEvery: 0 });
    fs.writeFileSync(path.join(dir, 'sweep.json'), JSON.stringify({ base: path.basename(config), out: 'sweep', mode: 'distill', grid: { seed: [1, 2] } }));
    const child = start(['sweep', 'sweep.json'], dir);
    const metrics = path.join(dir, 'sweep/seed-1/metrics.jsonl');
    await waitFor(() => fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('"type":"step"'));
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    expect(child.output()).toMatch(/sweep: 0\/2 runs done/);
    expect(fs.readdirSync(path.join(dir, 'sweep/seed-1/checkpoints'))).toHaveLength(1);
    expect(fs.existsSync(path.join(dir, 'sweep/seed-2'))).toBe(false);
  });

  it('a first SIGINT quits at once where there is nothing to keep (tokenizer training)', async () => {
    const dir = tmp();
    const train = path.resolve(DATA, '../translation-as-en/train.jsonl.gz');
    const child = start(['tokenizer', train, '--out', 'tok.json', '--vocab-size', '8000'], dir);
    await new Promise((r) => setTimeout(r, 1500));
    const sent = Date.now();
    child.kill('SIGINT');
    expect(await exited(child)).toBe(-1); // ended by the signal itself: the shell reports 130
    expect(Date.now() - sent).toBeLessThan(3000);
    expect(fs.existsSync(path.join(dir, 'tok.json'))).toBe(false);
  });

  it('stops a diverging run with the step and the fix, keeping the last good checkpoint', () => {
    const dir = tmp();
    const result = skd(['distill', tinyConfig(dir, { steps: 20, checkpointEvery: 1, learningRate: 1e12 }), '--out', 'runs/a'], dir);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /(loss became (NaN|Infinity) at step \d+|sampling failed at step \d+: the model's logits contain NaN[^.]*)\. Fix: lower training\.learningRate/,
    );
    expect(fs.readdirSync(path.join(dir, 'runs/a/checkpoints')).length).toBeGreaterThan(0);
  });

  it('stops early when the watched metric stops improving (training.earlyStopping)', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 30, checkpointEvery: 100 });
    const sets = ['--set', 'training.evalEvery=1', '--set', 'training.earlyStopping={"metric":"validationLoss","mode":"max","patience":1}'];
    const result = skd(['distill', config, '--out', 'runs/a', ...sets], dir);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/early stopping at step \d+: validationLoss has not improved for 1 evaluations/);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'runs/a/summary.json'), 'utf8'));
    expect(summary.endReason).toBe('early-stopped');
    expect(summary.steps).toBeLessThan(30);
  });

  it('skd train refuses a KD divergence, and everything is validated before work starts', () => {
    const dir = tmp();
    const config = tinyConfig(dir);
    const train = skd(['train', config, '--out', 'runs/a'], dir);
    expect(train.status).toBe(2);
    expect(train.stderr).toContain('skd train runs supervised fine-tuning, but divergence is "forward-kl". Fix: use skd distill');
    const typo = skd(['distill', config, '--set', 'training.stepz=3', '--out', 'runs/b'], dir);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain('training.stepz: unknown key (did you mean "steps"?)');
    expect(fs.existsSync(path.join(dir, 'runs'))).toBe(false); // nothing was created
    const tooLong = skd(['distill', config, '--set', 'student.options.contextLength=64', '--out', 'runs/c'], dir);
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toMatch(/train\.jsonl\.gz:\d+: example has \d+ tokens .* more than the context of 64/);
    expect(fs.existsSync(path.join(dir, 'runs'))).toBe(false); // found before the run directory was made
  });

  it('a too-long example names the setting by its full path; put elsewhere, the setting says where it belongs; pasted, the run succeeds', () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2, evalEvery: 0, checkpointEvery: 0 });
    const short = ['--set', 'student.options.contextLength=240', '--set', 'teacher.options.contextLength=240'];
    const tooLong = skd(['distill', config, ...short, '--out', 'runs/a'], dir);
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toContain('or set training.onTooLong: "skip" to skip and count them');
    const misplaced = skd(['distill', config, ...short, '--set', 'dataset.options.onTooLong=skip', '--out', 'runs/a'], dir);
    expect(misplaced.status).toBe(2);
    expect(misplaced.stderr).toContain('dataset.options.onTooLong: unknown key; did you mean training.onTooLong?');
    const pasted = skd(['distill', config, ...short, '--set', 'training.onTooLong=skip', '--out', 'runs/a'], dir);
    expect(pasted.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'runs/a/summary.json'), 'utf8')).steps).toBe(2);
  });

  it("skd check prints the run's expected peak memory and refuses a run the backend cannot hold; a run records its measured peak beside it", () => {
    const dir = tmp();
    const config = tinyConfig(dir, { steps: 2, evalEvery: 0, checkpointEvery: 0 });
    const mid = ['--set', 'student={"kind":"gpt","options":{"layers":4,"dModel":256,"heads":4,"contextLength":512}}', '--set', 'training.batchSize=8'];
    const checked = skd(['check', config, ...mid], dir);
    expect(checked.status).toBe(0);
    const line =
      /^memory +~([\d.]+) GB peak \(student [\d.]+ GB, gradients and AdamW moments [\d.]+ GB, teacher [\d.]+ GB, activations ([\d.]+) GB, logits [\d.]+ GB, generation [\d.]+ GB\); this machine has [\d.]+ GB$/m.exec(
        checked.stdout,
      );
    expect(line).not.toBeNull();
    // A batch whose activations pass the wasm heap: refused on wasm, with the fix; the native backend takes it.
    const huge = [...mid, '--set', 'training.batchSize=512'];
    const onWasm = skd(['check', config, ...huge, '--set', 'backend=wasm'], dir);
    expect(onWasm.status).toBe(2);
    expect(onWasm.stderr).toMatch(/more than the wasm backend's 4 GB heap\. Fix: set backend: "native"/);
    expect(skd(['check', config, ...huge, '--set', 'backend=native'], dir).stdout).toMatch(/^memory +~\d/m);
    // The run's summary: its measured peak beside the estimate, which is within a factor of two of it.
    const run = skd(['distill', config, ...mid, '--out', 'runs/a'], dir);
    expect(run.status).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'runs/a/summary.json'), 'utf8'));
    expect(summary.expectedPeakMemoryBytes).toBeCloseTo(Number(line?.[1]) * 1e9, -8);
    expect(summary.peakMemoryBytes / summary.expectedPeakMemoryBytes).toBeGreaterThan(0.5);
    expect(summary.peakMemoryBytes / summary.expectedPeakMemoryBytes).toBeLessThan(2);
  });

  it('ends quietly when its reader has closed the pipe (skd kinds | true)', () => {
    // `true` exits before the CLI writes anything, so every write hits a closed pipe.
    const result = spawnSync('bash', ['-c', `set -o pipefail; node ${BIN} kinds | true`], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).not.toContain('EPIPE');
    expect(result.status).toBe(0);
  });

  it('--help lists every command', () => {
    const help = skd(['--help'], tmp()).stdout;
    for (const command of ['check', 'train', 'distill', 'eval', 'generate', 'export', 'sweep', 'worker', 'report', 'dashboard', 'tokenizer', 'kinds'])
      expect(help).toContain(command);
  });

  it('trains a BPE tokenizer on a dataset, and a config uses it', () => {
    const dir = tmp();
    const out = path.join(dir, 'tokenizer.json');
    const result = skd(['tokenizer', `${DATA}/train.jsonl.gz`, '--out', out, '--vocab-size', '400'], dir);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/tokenizer: 400 tokens from 100000 texts, [\d.]+ bytes per token/);
    const bytesPerToken = Number(/([\d.]+) bytes per token/.exec(result.stdout)?.[1]);
    expect(bytesPerToken).toBeGreaterThan(1.5); // merges compress the text
    const json = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(json.model.type).toBe('BPE');
    const config = tinyConfig(dir);
    const checked = skd(['check', config, '--set', `tokenizer={"kind":"bpe","options":{"path":"${out}"}}`], dir);
    expect(checked.status).toBe(0);
    expect(checked.stdout).toContain('tokenizer  bpe (vocabulary 400)');
    // No pair occurs a million times: no merge is learned, each byte stays a token.
    const rare = skd(['tokenizer', `${DATA}/train.jsonl.gz`, '--out', path.join(dir, 'bytes.json'), '--vocab-size', '400', '--min-frequency', '1000000'], dir);
    expect(rare.stdout).toContain('1.00 bytes per token');
    const missing = skd(['tokenizer', `${DATA}/train.jsonl.gz`, '--out', out, '--fields', 'nope'], dir);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no text found in fields nope');
    // A teacher with this tokenizer teaching a byte-level student: SKD across tokenizers with GOLD's loss.
    const across = [
      '--set',
      `teacherTokenizer={"kind":"bpe","options":{"path":"${out}"}}`,
      '--set',
      'divergence={"kind":"gold","options":{"beta":0.1}}',
      '--set',
      'training.steps=2',
      '--set',
      'training.evalEvery=0',
    ];
    const checkedAcross = skd(['check', config, ...across], dir);
    expect(checkedAcross.stdout).toMatch(/^teacher tokenizer bpe \(vocabulary 400\): distilled across tokenizers; \d+ of its token texts/m);
    expect(checkedAcross.stdout).toMatch(/^teacher {4}gpt \(context 512, vocabulary 400\)/m);
    const distilled = skd(['distill', config, ...across, '--out', path.join(dir, 'across')], dir);
    expect(distilled.stderr).not.toMatch(/error|warning/i);
    expect(distilled.status).toBe(0);
    const steps = fs
      .readFileSync(path.join(dir, 'across/metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"type":"step"'))
      .map((l) => JSON.parse(l));
    expect(steps).toHaveLength(2);
    expect(steps.every((e) => e.loss > 0 && e.sampler.teacherAcceptanceRate >= 0)).toBe(true);
    const refused = skd(['check', config, ...across, '--set', 'divergence={"kind":"forward-kl"}'], dir);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/divergence.kind.*uld, gold or alm/);
  });
});

describe('skd export', () => {
  it('writes a trained student as a Hugging Face GPT-2 folder, checked by reading it back; never over an existing folder', () => {
    const dir = tmp();
    const student = path.resolve(__dirname, '../../../experiments/arithmetic/models/student-1k');
    const result = skd(['export', student, '--out', 'hf', '--json'], dir);
    expect(result.stderr).toMatch(/^backend \S+[^\n]*\n$/);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ out: path.join(dir, 'hf'), layers: 2, dModel: 192, reloadedLogitsMaxDiff: 0 });
    expect(fs.readdirSync(path.join(dir, 'hf')).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const again = skd(['export', student, '--out', 'hf'], dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('already exists');
    const missing = skd(['export', path.join(dir, 'nothing'), '--out', 'hf2'], dir);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no such checkpoint folder');
  });
});

describe('skd sweep, eval, generate and report', () => {
  const dir = tmp();
  let sweepFile: string;
  beforeAll(() => {
    const config = tinyConfig(dir, { steps: 2, checkpointEvery: 1 });
    sweepFile = path.join(dir, 'sweep.json');
    const samplers = [{ kind: 'supervised' }, { kind: 'skd', options: { topK: 40, maxNewTokens: 6 } }];
    fs.writeFileSync(sweepFile, JSON.stringify({ base: path.basename(config), out: 'sweep', mode: 'distill', grid: { sampler: samplers, seed: [1, 2] } }));
  });

  it('runs every combination; a killed sweep continues where it stopped', async () => {
    const child = start(['sweep', sweepFile], dir);
    await waitFor(() => fs.existsSync(path.join(dir, 'sweep/sampler-supervised__seed-1/summary.json')));
    child.kill('SIGKILL');
    await exited(child);
    const rerun = skd(['sweep', sweepFile], dir);
    expect(rerun.status).toBe(0);
    expect(rerun.stdout).toContain('sweep 1/4 sampler-supervised__seed-1: done earlier, skipped');
    expect(rerun.stdout).toContain('sweep: 4/4 runs done');
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'sweep/sweep-state.json'), 'utf8'));
    expect(state.runs.map((r: { status: string }) => r.status)).toEqual(['done', 'done', 'done', 'done']);
  });

  it('--only runs the chosen runs and leaves the rest to a later full sweep, which skips them', () => {
    const shared = tmp();
    const config = tinyConfig(shared, { steps: 2, evalEvery: 0 });
    fs.writeFileSync(path.join(shared, 'sweep.json'), JSON.stringify({ base: path.basename(config), out: 'sweep', mode: 'distill', grid: { seed: [1, 2] } }));
    const typo = skd(['sweep', 'sweep.json', '--only', 'seed=4'], shared);
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toContain('axis "seed" has no value "4"');
    expect(fs.existsSync(path.join(shared, 'sweep'))).toBe(false);
    const only = skd(['sweep', 'sweep.json', '--only', 'seed=2'], shared);
    expect(only.status).toBe(0);
    expect(only.stdout).toContain('sweep: 1/1 runs done');
    expect(fs.existsSync(path.join(shared, 'sweep/seed-1'))).toBe(false);
    const all = skd(['sweep', 'sweep.json'], shared);
    expect(all.status).toBe(0);
    expect(all.stdout).toContain('sweep 2/2 seed-2: done earlier, skipped');
    expect(all.stdout).toContain('sweep: 2/2 runs done');
  });

  it('leaves a run another live process holds to it, and finishes it once that process is gone', async () => {
    const shared = tmp();
    const config = tinyConfig(shared, { steps: 2, evalEvery: 0 });
    fs.writeFileSync(path.join(shared, 'sweep.json'), JSON.stringify({ base: path.basename(config), out: 'sweep', mode: 'distill', grid: { seed: [1, 2] } }));
    const holder = spawn('sleep', ['120']);
    try {
      fs.mkdirSync(path.join(shared, 'sweep/seed-1'), { recursive: true });
      fs.writeFileSync(path.join(shared, 'sweep/seed-1/run.lock'), JSON.stringify({ pid: holder.pid, host: os.hostname(), started: '2026-01-01T00:00:00Z' }));
      const first = skd(['sweep', 'sweep.json'], shared);
      expect(first.status).toBe(0);
      expect(first.stdout).toContain(`sweep 1/2 seed-1: running in process ${holder.pid} on ${os.hostname()}`);
      expect(first.stdout).toContain('sweep: 1/2 runs done, 1 running in other processes');
      expect(fs.existsSync(path.join(shared, 'sweep/seed-1/summary.json'))).toBe(false);
      expect(fs.existsSync(path.join(shared, 'sweep/seed-2/summary.json'))).toBe(true);
    } finally {
      holder.kill('SIGKILL');
      await exited(holder);
    }
    const second = skd(['sweep', 'sweep.json'], shared);
    expect(second.status).toBe(0);
    expect(second.stderr).toContain('which is no longer running; taking it over');
    expect(second.stdout).toContain('sweep: 2/2 runs done');
  });

  it('two sweep processes on one sweep share its runs: each trained once, none failed', async () => {
    const shared = tmp();
    const config = tinyConfig(shared, { steps: 6, evalEvery: 0 });
    fs.writeFileSync(
      path.join(shared, 'sweep.json'),
      JSON.stringify({ base: path.basename(config), out: 'sweep', mode: 'distill', grid: { seed: [1, 2, 3, 4] } }),
    );
    const lanes = [start(['sweep', 'sweep.json'], shared), start(['sweep', 'sweep.json'], shared)];
    const codes = await Promise.all(lanes.map(exited));
    expect({ codes, output: codes.some((c) => c !== 0) ? lanes.map((l) => l.output()) : [] }).toEqual({ codes: [0, 0], output: [] });
    const runs = ['seed-1', 'seed-2', 'seed-3', 'seed-4'];
    for (const run of runs) {
      const started = fs
        .readFileSync(path.join(shared, 'sweep', run, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"run-started"'));
      expect({ run, started: started.length }).toEqual({ run, started: 1 });
    }
    // Each run completed in exactly one of the two, whichever took it.
    const output = lanes.map((lane) => lane.output()).join('\n');
    for (const run of runs)
      expect({ run, completed: output.split(`run complete: ${path.join(shared, 'sweep', run)}\n`).length - 1 }).toEqual({ run, completed: 1 });
    const state = JSON.parse(fs.readFileSync(path.join(shared, 'sweep/sweep-state.json'), 'utf8'));
    expect(state.runs.map((r: { status: string }) => r.status)).toEqual(['done', 'done', 'done', 'done']);
  });

  it("evaluates and generates with the config's student", () => {
    const model = path.join(dir, 'sweep/sampler-skd__seed-1/model');
    const student = `student={"kind":"checkpoint","options":{"path":"${model}"}}`;
    const evaluated = skd(['eval', sweepFile.replace('sweep.json', 'run.json'), '--limit', '3', '--set', student, '--json'], dir);
    expect(evaluated.status).toBe(0);
    // stdout holds the result alone (progress and the backend line go to stderr): `skd eval ... | jq` works.
    const result = JSON.parse(evaluated.stdout);
    expect(evaluated.stdout.trim().split('\n')).toHaveLength(1);
    expect(evaluated.stderr).toMatch(/eval test \d\/3/);
    expect(result.metrics).toMatchObject({ exactMatch: expect.any(Number), count: 3, perplexity: expect.any(Number), teacherAcceptance: expect.any(Number) });
    expect(result.intervals.exactMatch).toEqual([expect.any(Number), expect.any(Number)]);
    // --out: a run folder the report reads as one more group, beside the sweep's runs.
    const written = skd(
      ['eval', sweepFile.replace('sweep.json', 'run.json'), '--limit', '3', '--set', student, '--out', 'sweep/initial', '--group', 'initial-student'],
      dir,
    );
    expect(written.status).toBe(0);
    expect(written.stdout).toMatch(/exactMatch +[\d.]+ +95% interval \[[\d.]+, [\d.]+\]/);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'sweep/initial/summary.json'), 'utf8'))).toMatchObject({
      group: 'initial-student',
      steps: 0,
      bootstrap: 'eval/test-step-000000.bootstrap.json',
    });
    expect(skd(['eval', sweepFile.replace('sweep.json', 'run.json'), '--limit', '3', '--out', 'sweep/initial'], dir).stderr).toContain(
      'exists and is not empty',
    );
    const generated = skd(['generate', sweepFile.replace('sweep.json', 'run.json'), '--prompt', 'Tom has 3 apples.', '--max-new-tokens', '5'], dir);
    expect(generated.status).toBe(0);
    // The dataset's template is applied as in training: the same as giving the templated prompt with --raw.
    const templated = ['--set', 'dataset.options.template=Q: {prompt}\nA:', '--max-new-tokens', '8', '--set', student];
    const viaTemplate = skd(['generate', sweepFile.replace('sweep.json', 'run.json'), '--prompt', 'Tom has 3 apples.', ...templated], dir);
    const viaRaw = skd(['generate', sweepFile.replace('sweep.json', 'run.json'), '--raw', '--prompt', 'Q: Tom has 3 apples.\nA:', ...templated], dir);
    expect(viaTemplate.status).toBe(0);
    expect(viaTemplate.stdout).toBe(viaRaw.stdout);
  });

  it('reports mean and std over seeds per method, and the HTML charts render in Chromium', async () => {
    const report = skd(['report', 'sweep', '--out', 'report'], dir);
    expect(report.status).toBe(0);
    const markdown = fs.readFileSync(path.join(dir, 'report/report.md'), 'utf8');
    expect(markdown).toMatch(/\| sampler-supervised \| 2 \| forward-kl \| [\d.]+ ± [\d.]+ \|/);
    expect(markdown).toMatch(/\| sampler-skd \| 2 \|/);
    expect(markdown).toMatch(/\| initial-student \| 1 \|/);
    expect(markdown).toMatch(/\| sampler-skd \| 4 \| [\d.]+ \[[\d.]+, [\d.]+\] \|/); // intervals, seeds averaged
    const html = fs.readFileSync(path.join(dir, 'report/report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // the libraries are inlined: the file opens offline
    if (!chromiumRequired()) return;
    const screenshot = path.join(dir, 'report/report.png');
    const page = await renderPage(`file://${path.join(dir, 'report/report.html')}`, { screenshot });
    expect(page.errors).toEqual([]);
    const charts = drawnCharts(page.dom);
    expect([...charts.keys()]).toEqual(expect.arrayContaining(['loss', 'acceptance', 'eval-exactMatch']));
    expect(page.dom).toContain(`data-rendered="${charts.size}"`); // every chart drew, none failed
    // Loss: raw and smoothed lines; evaluation: points with interval bars; the initial student's single test point drawn.
    expect(charts.get('loss')?.marks.filter((m) => m === 'line')).toHaveLength(2);
    expect(charts.get('eval-exactMatch')?.marks).toEqual(expect.arrayContaining(['dot', 'rule']));
    expect(page.dom).toContain('sampler-skd');
    expect(page.dom).toContain('initial-student');
    expect(fs.statSync(screenshot).size).toBeGreaterThan(10_000);
  }, 180_000);

  it("adds --baseline models as rows scored on the runs' test examples, with paired tests against them", () => {
    const model = path.join(dir, 'sweep/sampler-supervised__seed-1/model');
    const args = ['report', 'sweep', '--out', 'report-b', '--baseline', model, '--paired', 'sampler=skd'];
    const report = skd(args, dir);
    expect(report.stderr).not.toMatch(/error|warning/i);
    expect(report.status).toBe(0);
    const markdown = fs.readFileSync(path.join(dir, 'report-b/report.md'), 'utf8');
    expect(markdown).toMatch(/\| baseline-model \| 1 \|/);
    expect(markdown).toMatch(/\| sampler-skd \| baseline-model \| exactMatch \|/);
    const evaluated = path.join(dir, 'report-b/baselines/sweep/sampler-supervised__seed-1-model/summary.json');
    const baseline = JSON.parse(fs.readFileSync(evaluated, 'utf8'));
    const run = JSON.parse(fs.readFileSync(path.join(dir, 'sweep/sampler-skd__seed-1/summary.json'), 'utf8'));
    expect(baseline.finalMetrics.count).toBe(run.finalMetrics.count);
    // The evaluation is kept: writing the report again evaluates nothing.
    const written = fs.statSync(evaluated).mtimeMs;
    expect(skd(args, dir).status).toBe(0);
    expect(fs.statSync(evaluated).mtimeMs).toBe(written);
    // --json: the numbers behind the tables, alone on stdout (also in report.json).
    const json = skd([...args, '--json'], dir);
    const data = JSON.parse(json.stdout);
    expect(data).toEqual(JSON.parse(fs.readFileSync(path.join(dir, 'report-b/report.json'), 'utf8')));
    const groups = data.sections[0].groups as {
      group: string;
      seeds: number;
      metrics: Record<string, { mean: number; values: number[] }>;
      bootstrap?: { examples: number };
    }[];
    const skdGroup = groups.find((g) => g.group === 'sampler-skd');
    expect(skdGroup?.seeds).toBe(2);
    expect(skdGroup?.metrics['exactMatch']?.values).toHaveLength(2);
    expect(groups.find((g) => g.group === 'baseline-model')?.bootstrap?.examples).toBe(run.finalMetrics.count);
    expect(data.sections[0].paired).toContainEqual(expect.objectContaining({ system: 'sampler-skd', baseline: 'baseline-model', metric: 'exactMatch' }));
    const bad = skd(['report', 'sweep', '--out', 'report-c', '--baseline', path.join(dir, 'sweep')], dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('neither a finished run or eval folder (summary.json) nor a model folder (config.json)');
  });

  it('joins an skd eval --out folder given beside the sweep to its section, and says how when it was scored on other examples', () => {
    const model = path.join(dir, 'sweep/sampler-supervised__seed-1/model');
    const student = `student={"kind":"checkpoint","options":{"path":"${path.join(dir, 'sweep/sampler-skd__seed-1/model')}"}}`;
    const runConfig = sweepFile.replace('sweep.json', 'run.json');
    expect(skd(['eval', runConfig, '--set', student, '--out', 'evals/initial', '--group', 'baseline-initial-student'], dir).status).toBe(0);
    const report = skd(['report', 'sweep', 'evals/initial', '--baseline', model, '--out', 'report-d', '--json'], dir);
    expect(report.stderr).not.toMatch(/error|warning/i);
    expect(report.status).toBe(0);
    const data = JSON.parse(report.stdout) as { sections: { title: string; groups: { group: string }[] }[] };
    expect(data.sections.map((s) => s.title)).toEqual(['sweep']); // one section: the evaluation is a row of the sweep's
    expect(data.sections[0]?.groups.map((g) => g.group)).toEqual(expect.arrayContaining(['baseline-initial-student', 'baseline-model', 'sampler-skd']));
    // Scored on other test examples (--limit 3 against the runs' 4): refused, saying what it read and how to join.
    expect(skd(['eval', runConfig, '--set', student, '--limit', '3', '--out', 'evals/other', '--group', 'other'], dir).status).toBe(0);
    const other = skd(['report', 'sweep', 'evals/other', '--out', 'report-e'], dir);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain("no section's trained runs match: they were scored on other test examples; sections read: sweep (");
    expect(other.stderr).toContain('Fix: evaluate it with a config of those runs');
  });
});
