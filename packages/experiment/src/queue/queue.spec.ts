import type { RunEvent } from '@skd/core';
import { SkdError } from '@skd/core';
import type { LoadedSweep } from '../sweep';
import { progressTracker } from './job-runner';
import { connectionOptions, isRunProgress, jobId, parseRedisUrl, sweepId, sweepJobs } from './jobs';
import { clock } from '@skd/trainer';
import { bullWorkerOptions } from './worker';
import { renderStatus, statusCounts, statusDetail, type RunStatus } from './status';

describe('parseRedisUrl', () => {
  it('reads host, port, database and credentials, with defaults', () => {
    expect(parseRedisUrl('redis://10.0.0.5:6390/2')).toMatchObject({ host: '10.0.0.5', port: 6390, db: 2, tls: false, display: 'redis://10.0.0.5:6390/2' });
    expect(parseRedisUrl('redis://queue.lab')).toMatchObject({ host: 'queue.lab', port: 6379, db: 0 });
    const secret = parseRedisUrl('rediss://me:p%40ss@h:1/0');
    expect(secret).toMatchObject({ username: 'me', password: 'p@ss', tls: true });
    expect(secret.display).not.toContain('p%40ss');
    expect(parseRedisUrl('redis://[::1]:7000')).toMatchObject({ host: '::1', port: 7000 });
    expect(connectionOptions(parseRedisUrl('redis://h:1/3'))).toEqual({ host: 'h', port: 1, db: 3, maxRetriesPerRequest: null });
  });

  it.each([
    ['localhost:6379', 'not a URL'],
    ['http://h:6379', 'scheme must be redis://'],
    ['redis://h:6379/queue', 'database must be a number'],
    ['redis://h:6379/0?name=x', 'not read'],
  ])('refuses %s naming the problem and the form', (text, why) => {
    let error: unknown;
    try {
      parseRedisUrl(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SkdError);
    expect((error as SkdError).message).toContain(why);
    expect((error as SkdError).hint).toContain('redis://HOST:PORT[/DB]');
  });
});

describe('job naming', () => {
  const sweep = (out: string): LoadedSweep => ({
    file: '/lab/sweep.json',
    mode: 'distill',
    base: '/lab/run.json',
    out,
    runs: [
      { name: 'method-skd__seed-1', group: 'method-skd', sets: ['seed=1'], labels: { method: 'skd', seed: '1' } },
      { name: 'method-skd__seed-2', group: 'method-skd', sets: ['seed=2'], labels: { method: 'skd', seed: '2' } },
    ],
  });

  it('gives a run the same id from any shell, and two sweeps different ids', () => {
    expect(jobId('/lab/runs/table', 'seed-1')).toBe(jobId('/lab/runs/../runs/table', 'seed-1'));
    expect(jobId('/lab/runs/table', 'seed-1')).not.toBe(jobId('/other/runs/table', 'seed-1'));
    expect(sweepId('/lab/runs/table')).toMatch(/^table-[0-9a-f]{10}$/);
    expect(jobId('/lab/runs/my table:v2', 'seed-1')).not.toContain(':');
  });

  it("makes one job per run, in the sweep order, with absolute paths and the run's overrides", () => {
    const jobs = sweepJobs(sweep('/lab/runs/table'));
    expect(jobs.map((j) => j.id)).toEqual([jobId('/lab/runs/table', 'method-skd__seed-1'), jobId('/lab/runs/table', 'method-skd__seed-2')]);
    expect(jobs[1]?.data).toEqual({
      sweep: '/lab/sweep.json',
      name: 'method-skd__seed-2',
      group: 'method-skd',
      config: '/lab/run.json',
      sets: ['seed=2'],
      out: '/lab/runs/table',
      mode: 'distill',
    });
  });
});

describe('status rendering', () => {
  const runs: RunStatus[] = [
    { name: 'a', state: 'completed' },
    { name: 'bb', state: 'active', progress: { step: 40, totalSteps: 200, etaSeconds: 3725, loss: 0.51234, acceptanceRate: 0.734, worker: 'node7:123' } },
    { name: 'c', state: 'failed', error: 'data/test.jsonl:3: not JSON' },
    { name: 'd', state: 'waiting' },
    { name: 'e', state: 'waiting', progress: { step: 12, totalSteps: 200 }, stalled: 1 },
    { name: 'f', state: 'active', progress: { step: 0, totalSteps: 200, phase: { name: 'eval', done: 3, total: 8 } } },
  ];

  it('shows step, ETA, loss, acceptance and worker while active, the error when failed', () => {
    expect(statusDetail(runs[1] as RunStatus)).toBe('step 40/200  ETA 1:02:05  loss 0.5123  acceptance 73.4%  on node7:123');
    expect(statusDetail(runs[2] as RunStatus)).toBe('data/test.jsonl:3: not JSON');
    expect(statusDetail(runs[3] as RunStatus)).toBe('');
    expect(statusDetail(runs[4] as RunStatus)).toBe('resumes from its checkpoint (was at step 12/200); taken over after a lost worker (1x)');
    expect(statusDetail(runs[5] as RunStatus)).toBe('step 0/200  eval 3/8');
    expect(clock(59.6)).toBe('1:00');
  });

  it('prints an aligned table and the counts by state', () => {
    const lines = renderStatus(runs);
    expect(lines[0]).toBe('run  state      detail');
    expect(lines[1]).toBe('a    completed');
    expect(lines[3]).toBe('c    failed     data/test.jsonl:3: not JSON');
    expect(lines.at(-1)).toBe('6 runs: 1 completed, 2 active, 2 waiting, 1 failed');
    expect(
      statusCounts([
        { name: 'x', state: 'done earlier' },
        { name: 'y', state: 'not enqueued' },
      ]),
    ).toBe('1 done earlier, 1 not enqueued');
  });
});

describe('progressTracker', () => {
  it("turns run events into job progress with an ETA at this process's pace", () => {
    const track = progressTracker('host:1');
    const step = (n: number, seconds: number): RunEvent => ({
      type: 'step',
      step: n,
      totalSteps: 10,
      loss: 1 / n,
      learningRate: 1e-3,
      gradNorm: 1,
      tokens: 8,
      tokensPerSecond: 8,
      seconds,
      sampler: { acceptanceRate: 0.5 },
    });
    expect(track({ type: 'run-started', runId: 'r', totalSteps: 10, startStep: 4, backend: 'wasm', time: 0 })).toEqual({
      step: 4,
      totalSteps: 10,
      worker: 'host:1',
    });
    track(step(5, 1));
    const p = track(step(6, 3));
    expect(p).toEqual({ step: 6, totalSteps: 10, etaSeconds: 8, loss: 1 / 6, acceptanceRate: 0.5, worker: 'host:1' });
    expect(isRunProgress(p)).toBe(true);
    expect(track({ type: 'progress', phase: 'eval', done: 2, total: 4 })).toMatchObject({ step: 6, phase: { name: 'eval', done: 2, total: 4 } });
    expect(track({ type: 'checkpoint', step: 6, path: '/x' })).toBeUndefined();
    expect(isRunProgress({ step: 'x' })).toBe(false);
  });
});

describe('bullWorkerOptions', () => {
  it("gives BullMQ the worker's concurrency and lock duration (stall checks at half of it)", () => {
    const options = bullWorkerOptions({ target: parseRedisUrl('redis://h:7/1'), concurrency: 3, lockSeconds: 12 }, 'node7:42');
    expect(options).toMatchObject({
      concurrency: 3,
      lockDuration: 12_000,
      stalledInterval: 6000,
      maxStalledCount: 5,
      name: 'node7:42',
      autorun: false,
      connection: { host: 'h', port: 7, db: 1, maxRetriesPerRequest: null },
    });
    expect(bullWorkerOptions({ target: parseRedisUrl('redis://h'), concurrency: 1, lockSeconds: 2 }, 'w').stalledInterval).toBe(1000);
  });
});
