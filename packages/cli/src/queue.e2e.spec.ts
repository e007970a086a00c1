import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BIN, exited, skd, tinyConfig, tmp, waitFor } from './testing/cli';

// End-to-end: sweeps through a real Redis (Debian's redis-server, installed by tools/setup.sh),
// started here on a free loopback port in a temporary folder, never a system one.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server with append-only persistence, so a restart keeps the queue (as a lab's would). */
class TestRedis {
  private process?: ChildProcess;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Each test uses its own database, so what one leaves in its queue never reaches another's workers. */
  url(db: number): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  async start(): Promise<void> {
    if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('redis-server is not installed: run bash tools/setup.sh');
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: 'ignore' },
    );
    await waitFor(() => spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 10_000);
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const done = exited(child);
    child.kill('SIGTERM');
    await done;
  }
}

const launched: ChildProcess[] = [];

/** A long-running `skd` process with its stdout and stderr kept apart (killed after its test, whatever happened). */
function launch(args: string[], cwd: string): ChildProcess & { stdout: NodeJS.ReadableStream; out: () => string; err: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  launched.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return Object.assign(child as ChildProcess & { stdout: NodeJS.ReadableStream }, { out: () => out, err: () => err });
}

const summaryOf = (file: string) => {
  // Timing and the measured peak memory belong to the process, not to the run.
  const { seconds: _seconds, peakMemoryBytes: _peak, ...rest } = JSON.parse(fs.readFileSync(file, 'utf8'));
  return rest;
};

describe('skd sweep --queue and skd worker (Redis, BullMQ)', () => {
  let redis: TestRedis;
  let dir: string;

  beforeAll(async () => {
    // One thread per process: three workers share this machine's cores (and results do not depend on it).
    process.env['SKD_THREADS'] = '1';
    dir = tmp();
    fs.mkdirSync(path.join(dir, 'redis'));
    redis = new TestRedis(await freePort(), path.join(dir, 'redis'));
    await redis.start();
  });
  afterEach(async () => {
    const running = launched.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
    const gone = running.map(exited);
    running.forEach((c) => c.kill('SIGKILL'));
    await Promise.all(gone);
  });
  afterAll(() => redis.stop());

  it('runs a 6-run sweep on 3 workers through a killed worker and a Redis restart: every run once, as the local sweep', async () => {
    const config = tinyConfig(dir, { steps: 40, checkpointEvery: 2, evalEvery: 20 });
    const grid = { sampler: [{ kind: 'supervised' }, { kind: 'skd', options: { topK: 40, maxNewTokens: 6 } }], seed: [1, 2, 3] };
    fs.writeFileSync(path.join(dir, 'queued.json'), JSON.stringify({ base: path.basename(config), out: 'queued', mode: 'distill', grid }));
    fs.writeFileSync(path.join(dir, 'local.json'), JSON.stringify({ base: path.basename(config), out: 'local', mode: 'distill', grid }));

    const enqueued = skd(['sweep', 'queued.json', '--queue', redis.url(0), '--no-wait'], dir);
    expect(enqueued.status).toBe(0);
    expect(enqueued.stdout).toContain('queued 6 of 6 runs');
    // The run's name is its job id: enqueuing again adds nothing.
    expect(skd(['sweep', 'queued.json', '--queue', redis.url(0), '--no-wait'], dir).stdout).toContain('queued 0 of 6 runs of');
    const waiting = JSON.parse(skd(['sweep', 'queued.json', '--queue', redis.url(0), '--status', '--json'], dir).stdout);
    expect(waiting.runs.map((r: { state: string }) => r.state)).toEqual(Array(6).fill('waiting'));

    const follower = launch(['sweep', 'queued.json', '--queue', redis.url(0)], dir);
    const workers = [0, 1, 2].map(() => launch(['worker', '--queue', redis.url(0), '--lock-duration', '3'], dir));

    // Kill a worker that is mid-run with a checkpoint written: its job must be taken over and resumed.
    let victim: (typeof workers)[number] | undefined;
    let victimRun = '';
    await waitFor(() => {
      for (const w of workers) {
        const running = [...w.err().matchAll(/worker: running (\S+)/g)].at(-1)?.[1];
        if (!running || new RegExp(`completed ${running} `).test(w.out())) continue;
        const checkpoints = path.join(dir, 'queued', running, 'checkpoints');
        if (fs.existsSync(checkpoints) && fs.readdirSync(checkpoints).length >= 2) {
          victim = w;
          victimRun = running;
          return true;
        }
      }
      return false;
    }, 120_000);
    victim?.kill('SIGKILL');

    // Redis goes down and comes back (same data) while the other workers train.
    await redis.stop();
    await new Promise((r) => setTimeout(r, 500));
    await redis.start();
    expect(follower.exitCode).toBeNull(); // the restart happened mid-sweep

    const followed = await exited(follower);
    expect(follower.err()).not.toMatch(/error/i);
    expect(followed).toBe(0);
    expect(follower.out()).toContain('sweep: 6/6 runs done');
    const status = JSON.parse(skd(['sweep', 'queued.json', '--queue', redis.url(0), '--status', '--json'], dir).stdout);
    expect(status.runs.map((r: { state: string }) => r.state)).toEqual(Array(6).fill('completed'));
    expect(status.runs.find((r: { name: string }) => r.name === victimRun).stalled).toBeGreaterThanOrEqual(1);

    const survivors = workers.filter((w) => w !== victim);
    survivors.forEach((w) => w.kill('SIGTERM'));
    expect(await Promise.all(survivors.map(exited))).toEqual([130, 130]);
    // Every run trained to its end exactly once (the victim's run by the worker that took it over).
    const completions = workers.flatMap((w) => [...w.out().matchAll(/^completed (\S+) \(step 40/gm)].map((m) => m[1])).sort();
    expect(completions).toEqual(grid.sampler.flatMap((s) => grid.seed.map((seed) => `sampler-${s.kind}__seed-${seed}`)).sort());
    expect(victim?.out()).not.toContain(`completed ${victimRun} `);

    // The local sweep of the same grid gives the same summaries: same steps, metrics, acceptance.
    const local = skd(['sweep', 'local.json'], dir);
    expect(local.status).toBe(0);
    for (const name of completions) {
      expect(summaryOf(path.join(dir, 'queued', name as string, 'summary.json'))).toEqual(summaryOf(path.join(dir, 'local', name as string, 'summary.json')));
    }
  }, 600_000);

  it('fails a run with a data error once, visibly, and runs it again once the data is fixed', async () => {
    const config = tinyConfig(dir, { steps: 4 });
    const bad = path.join(dir, 'bad-test.jsonl');
    fs.writeFileSync(bad, '{"prompt": "1+1=", "response": "2"}\nnot json\n');
    const data = [
      { name: 'good', set: { 'training.steps': 4 } },
      { name: 'bad', set: { 'dataset.options.files.test': bad } },
    ];
    fs.writeFileSync(path.join(dir, 'faults.json'), JSON.stringify({ base: path.basename(config), out: 'faults', mode: 'distill', grid: { '@data': data } }));
    const follower = launch(['sweep', 'faults.json', '--queue', redis.url(1)], dir);
    const worker = launch(['worker', '--queue', redis.url(1), '--max-jobs', '2'], dir);
    expect(await exited(worker)).toBe(0);
    expect(await exited(follower)).toBe(1);
    expect(follower.out()).toContain('sweep: 1/2 runs done, 1 failed');
    expect(worker.out()).toMatch(/^failed data-bad: .*bad-test\.jsonl:2/m);
    const table = skd(['sweep', 'faults.json', '--queue', redis.url(1), '--status'], dir).stdout;
    expect(table).toMatch(/data-bad\s+failed\s+.*bad-test\.jsonl:2/);
    expect(table).toContain('2 runs: 1 completed, 1 failed');

    // Not retried by itself: a second worker finds nothing to do. After a fix, enqueuing retries it.
    fs.writeFileSync(bad, '{"prompt": "1+1=", "response": "2"}\n');
    const again = skd(['sweep', 'faults.json', '--queue', redis.url(1), '--no-wait'], dir);
    expect(again.stderr).toContain('retrying data-bad');
    expect(again.stdout).toContain('1 failed runs retried');
    const fixer = launch(['worker', '--queue', redis.url(1), '--max-jobs', '1'], dir);
    expect(await exited(fixer)).toBe(0);
    expect(fixer.out()).toContain('completed data-bad (step 4');
  }, 300_000);

  it('enqueues and runs a sweep whose config names an ES-module component from outside the workspace', async () => {
    const config = JSON.parse(fs.readFileSync(tinyConfig(dir, { steps: 2, evalEvery: 0, checkpointEvery: 0 }), 'utf8'));
    fs.mkdirSync(path.join(dir, 'ext'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'ext/length.mjs'),
      [
        "import { z } from 'zod';",
        "import { defineComponent } from '@skd/core';",
        "export default defineComponent({ component: 'evaluator', kind: 'mean-length', summary: 'characters per prediction', options: z.strictObject({}),",
        "  create: () => ({ name: 'mean-length', async evaluate(p) { return { meanLength: p.reduce((n, x) => n + x.text.length, 0) / Math.max(1, p.length) }; } }) });",
      ].join('\n'),
    );
    config.evaluators.push({ kind: 'mean-length', module: './ext/length.mjs' });
    fs.writeFileSync(path.join(dir, 'esm.json'), JSON.stringify(config));
    fs.writeFileSync(path.join(dir, 'esm-sweep.json'), JSON.stringify({ base: 'esm.json', out: 'esm-sweep', grid: { seed: [1] } }));
    const follower = launch(['sweep', 'esm-sweep.json', '--queue', redis.url(2)], dir);
    const worker = launch(['worker', '--queue', redis.url(2), '--max-jobs', '1'], dir);
    expect(await exited(worker)).toBe(0);
    expect(await exited(follower)).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'esm-sweep/seed-1/summary.json'), 'utf8')).finalMetrics.meanLength).toEqual(expect.any(Number));
  }, 300_000);

  it('says what is wrong: an unreachable Redis, a bad URL, an out folder this worker cannot write, queue options without --queue', async () => {
    tinyConfig(dir, { steps: 4 });
    fs.writeFileSync(path.join(dir, 'blocker'), 'a file where the out folder should be');
    fs.writeFileSync(path.join(dir, 'unwritable.json'), JSON.stringify({ base: 'run.json', out: 'blocker/out', mode: 'distill', grid: { seed: [1] } }));
    const closed = await freePort();
    const unreachable = skd(['sweep', 'unwritable.json', '--queue', `redis://127.0.0.1:${closed}`], dir);
    expect(unreachable.status).toBe(2);
    expect(unreachable.stderr).toContain(`cannot reach Redis at redis://127.0.0.1:${closed}/0`);
    const badUrl = skd(['worker', '--queue', 'localhost:6379'], dir);
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toContain('give it as redis://HOST:PORT[/DB]');
    expect(skd(['sweep', 'unwritable.json', '--status'], dir).stderr).toContain('--status only apply to a queued sweep');

    expect(skd(['sweep', 'unwritable.json', '--queue', redis.url(2), '--no-wait'], dir).status).toBe(0);
    const worker = skd(['worker', '--queue', redis.url(2)], dir);
    expect(worker.status).toBe(2);
    expect(worker.stderr).toContain(`cannot write to the sweep's out folder ${path.join(dir, 'blocker/out')}`);
    expect(worker.stderr).toContain('shared storage');
    // The run went back to the queue for a worker that can write there.
    expect(skd(['sweep', 'unwritable.json', '--queue', redis.url(2), '--status'], dir).stdout).toMatch(/seed-1\s+waiting/);
  }, 120_000);

  it('hands its run back when stopped mid-run: the run waits in the queue from its checkpoint, and the next worker finishes it', async () => {
    const config = tinyConfig(dir, { steps: 400, checkpointEvery: 2, evalEvery: 0 });
    fs.writeFileSync(path.join(dir, 'handback.json'), JSON.stringify({ base: path.basename(config), out: 'handback', mode: 'distill', grid: { seed: [1] } }));
    expect(skd(['sweep', 'handback.json', '--queue', redis.url(3), '--no-wait'], dir).status).toBe(0);
    const first = launch(['worker', '--queue', redis.url(3)], dir);
    const checkpoints = path.join(dir, 'handback', 'seed-1', 'checkpoints');
    await waitFor(() => fs.existsSync(checkpoints) && fs.readdirSync(checkpoints).length >= 2, 120_000);
    const done = exited(first);
    first.kill('SIGTERM');
    expect(await done).toBe(130);
    expect(first.out()).toMatch(/handed back seed-1 at step \d+ \(checkpoint written\)/);
    expect(first.err()).not.toContain('does not answer');
    expect(skd(['sweep', 'handback.json', '--queue', redis.url(3), '--status'], dir).stdout).toMatch(/seed-1\s+waiting/);
    const second = launch(['worker', '--queue', redis.url(3), '--max-jobs', '1'], dir);
    expect(await exited(second)).toBe(0);
    expect(second.out()).toContain('completed seed-1 (step 400');
    expect(second.err()).toMatch(/steps [1-9]\d*\.\.400/); // resumed from the checkpoint, not from step 0
  }, 300_000);

  it('exits when stopped while its Redis is away (BullMQ alone would wait for Redis forever)', async () => {
    const away = new TestRedis(await freePort(), fs.mkdtempSync(path.join(dir, 'away-')));
    await away.start();
    const worker = launch(['worker', '--queue', away.url(0)], dir);
    await waitFor(() => worker.err().includes('taking runs from'), 30_000);
    await away.stop();
    await waitFor(() => worker.err().includes('(retrying)'), 30_000);
    const done = exited(worker);
    worker.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([done.then(() => 'exited'), new Promise((r) => (timer = setTimeout(() => r('still running'), 20_000)))]);
    clearTimeout(timer);
    expect(outcome).toBe('exited');
    expect(worker.err()).toContain('does not answer; exiting without handing the runs back');
  }, 90_000);
});
