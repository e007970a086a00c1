import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job, type WorkerOptions as WorkerOptions_ } from 'bullmq';
import { SkdError } from '@skd/core';
import type { Io } from '../io';
import type { RunnerCommand, RunnerMessage } from './job-runner';
import { QUEUE_NAME, connectionOptions, type RedisTarget, type RunJobData, type RunProgress } from './jobs';
import { untilReachable } from './redis';
import { clock } from '@skd/trainer';

export interface WorkerOptions {
  readonly target: RedisTarget;
  /** Runs at once, each in its own process (default 1: one run uses the machine's cores). */
  readonly concurrency: number;
  /** Take at most this many runs, then exit when they end. */
  readonly maxJobs?: number;
  /**
   * Seconds a run's job stays locked to this worker without a renewal: a worker killed or cut off for
   * longer loses its runs to the others, which resume them from their last checkpoints.
   */
  readonly lockSeconds: number;
  readonly io: Io;
  /** Aborted (SIGINT/SIGTERM): every run finishes its step, checkpoints, goes back to the queue; then the worker exits. */
  readonly signal?: AbortSignal;
  /** The run process's entry point (default: job-runner.js beside this file). */
  readonly runner?: string;
}

export interface WorkerResult {
  readonly completed: number;
  readonly failed: number;
  /** Runs given back to the queue unfinished (interrupted worker). */
  readonly handedBack: number;
  /** Set when the worker stopped because it cannot run the sweep here (e.g. its out folder is not writable). */
  readonly fatal?: SkdError;
}

/**
 * Checks that this machine can run a sweep's runs: the base config is readable and the out folder
 * writable, which on several machines means shared storage mounted at the same path everywhere.
 */
export function checkSharedStorage(data: RunJobData): void {
  try {
    fs.accessSync(data.config, fs.constants.R_OK);
  } catch (cause) {
    throw new SkdError(`this worker cannot read the sweep's run config ${data.config} (${(cause as NodeJS.ErrnoException).code ?? cause})`, {
      hint: "the sweep's files must be on storage every worker mounts at the same path (NFS or similar)",
    });
  }
  const probe = path.join(data.out, `.skd-worker-probe-${os.hostname()}-${process.pid}`);
  try {
    fs.mkdirSync(data.out, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (cause) {
    throw new SkdError(`this worker cannot write to the sweep's out folder ${data.out} (${(cause as NodeJS.ErrnoException).code ?? cause})`, {
      hint: 'the out folder must be shared storage (NFS or similar) mounted at the same path on every worker, writable by this user',
    });
  }
}

/** How long a stopping worker waits for Redis to answer before closing without it. */
const CLOSE_PROBE_MS = 3000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * BullMQ's settings for a worker: its runs' job locks last `lockSeconds` (renewed at half of it) and
 * are checked for stalls as often; a job whose worker vanished goes back to the queue, and only one
 * lost five times is failed. `autorun: false`: `runWorker` starts it once its handlers are in place.
 */
export function bullWorkerOptions(options: Pick<WorkerOptions, 'target' | 'concurrency' | 'lockSeconds'>, name: string): WorkerOptions_ {
  return {
    connection: connectionOptions(options.target),
    concurrency: options.concurrency,
    name,
    lockDuration: options.lockSeconds * 1000,
    stalledInterval: Math.max(1000, (options.lockSeconds * 1000) / 2),
    maxStalledCount: 5,
    autorun: false,
  };
}

type Outcome =
  { kind: 'done'; reason: string; step: number } | { kind: 'error'; message: string; bad: boolean; busy: boolean } | { kind: 'crashed'; why: string };

/** Runs one job's run in a child process, forwarding its lines and progress; resolves when the process has exited. */
function runInChild(runner: string, job: Job<RunJobData>, io: Io, onProgress: (p: RunProgress) => void, stopping: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const child: ChildProcess = fork(runner, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const prefix = `[${job.data.name}]`;
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) io.err(`${prefix} ${line}`);
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    let outcome: Outcome | undefined;
    child.on('message', (message: RunnerMessage) => {
      if (message.type === 'line') io.err(`${prefix} ${message.line}`);
      else if (message.type === 'progress') onProgress(message.progress);
      else if (message.type === 'done') outcome = { kind: 'done', reason: message.reason, step: message.step };
      else outcome = { kind: 'error', message: message.message, bad: message.bad, busy: message.busy };
    });
    const stop = () => {
      if (child.connected) child.send({ type: 'stop' } satisfies RunnerCommand);
    };
    stopping.addEventListener('abort', stop, { once: true });
    child.on('error', (error) => {
      outcome ??= { kind: 'crashed', why: error.message };
    });
    child.on('exit', (code, signal) => {
      stopping.removeEventListener('abort', stop);
      resolve(outcome ?? { kind: 'crashed', why: `its process ended with ${signal ? `signal ${signal}` : `exit code ${code}`} before reporting` });
    });
    child.send({ type: 'run', data: job.data } satisfies RunnerCommand);
    if (stopping.aborted) stop();
  });
}

/**
 * `skd worker`: takes runs from the queue and trains them, each in its own process, as the local
 * sweep would, in the sweep's out folder. Progress goes to the job (the sweep's terminal shows it).
 * A run's config or data error fails its job once, with the error; a run folder held by another
 * live process is tried again a little later; an interrupted worker hands its runs back.
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerResult> {
  const { io, target } = options;
  await untilReachable(target);
  const runner = options.runner ?? path.join(__dirname, 'job-runner.js');
  const stopping = new AbortController();
  let fatal: SkdError | undefined;
  let started = 0;
  let completed = 0;
  let failed = 0;
  let handedBack = 0;
  /** Runs whose process has not exited yet. */
  let children = 0;
  const active = new Map<string, RunProgress | undefined>();
  const name = `${os.hostname()}:${process.pid}`;
  const showActive = () => {
    const parts = [...active.entries()].map(([run, p]) =>
      p ? `${run} ${p.step}/${p.totalSteps}${p.etaSeconds !== undefined ? ` ETA ${clock(p.etaSeconds)}` : ''}` : `${run} starting`,
    );
    if (parts.length) io.progress(parts.join(' | '));
  };

  const closeWorker = () => {
    stopping.abort();
    void worker.close();
  };
  const processor = async (job: Job<RunJobData>, token?: string): Promise<{ step: number; reason: string }> => {
    if (stopping.signal.aborted || (options.maxJobs !== undefined && started >= options.maxJobs)) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    try {
      checkSharedStorage(job.data);
    } catch (error) {
      fatal = error as SkdError;
      await job.moveToWait(token);
      closeWorker();
      throw new WaitingError();
    }
    // Its folder has a summary: the run ended, e.g. under a worker whose job lock lapsed while Redis was away. It is not trained again.
    const summary = path.join(job.data.out, job.data.name, 'summary.json');
    if (fs.existsSync(summary)) {
      io.out(`finished earlier: ${job.data.name} (${summary} exists; nothing to run)`);
      return { step: Number((JSON.parse(fs.readFileSync(summary, 'utf8')) as { steps?: unknown }).steps ?? 0), reason: 'finished earlier' };
    }
    started += 1;
    // The last run this worker may take: stop fetching, finish it, exit.
    if (options.maxJobs !== undefined && started >= options.maxJobs) void worker.close();
    io.err(`worker: running ${job.data.name} (${job.id})`);
    active.set(job.data.name, undefined);
    let lastPublished = 0;
    let pending: RunProgress | undefined;
    const publish = (progress: RunProgress) => {
      active.set(job.data.name, progress);
      showActive();
      pending = progress;
      if (Date.now() - lastPublished < 1000) return;
      lastPublished = Date.now();
      // Redis may be away for a moment (restart): progress is best effort, the run goes on.
      job.updateProgress(progress).catch(() => undefined);
      pending = undefined;
    };
    try {
      children += 1;
      const outcome = await runInChild(runner, job, io, publish, stopping.signal).finally(() => (children -= 1));
      if (pending) await job.updateProgress(pending).catch(() => undefined);
      if (outcome.kind === 'done' && outcome.reason !== 'cancelled') {
        completed += 1;
        io.out(`completed ${job.data.name} (step ${outcome.step}, ${outcome.reason})`);
        return { step: outcome.step, reason: outcome.reason };
      }
      if (outcome.kind === 'done') {
        handedBack += 1;
        io.out(`handed back ${job.data.name} at step ${outcome.step} (checkpoint written)`);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (outcome.kind === 'error' && outcome.busy) {
        io.err(`worker: ${outcome.message}; trying again in ${options.lockSeconds} s`);
        await job.moveToDelayed(Date.now() + options.lockSeconds * 1000, token);
        throw new DelayedError();
      }
      failed += 1;
      const message = outcome.kind === 'error' ? outcome.message : `the run failed: ${outcome.why}`;
      io.out(`failed ${job.data.name}: ${message.split('\n')[0]}`);
      // A config or data error fails the same way on every worker: no retry.
      throw outcome.kind === 'error' && outcome.bad ? new UnrecoverableError(message) : new Error(message);
    } finally {
      active.delete(job.data.name);
    }
  };

  const worker = new Worker<RunJobData>(QUEUE_NAME, processor, bullWorkerOptions(options, name));
  let lastWarning = 0;
  worker.on('error', (error) => {
    if (Date.now() - lastWarning < 10_000) return;
    lastWarning = Date.now();
    io.err(`worker: redis at ${target.display}: ${error.message} (retrying)`);
  });
  io.err(
    `worker ${name}: taking runs from ${target.display} (concurrency ${options.concurrency}${options.maxJobs !== undefined ? `, at most ${options.maxJobs} runs` : ''})`,
  );
  const running = worker.run();
  // Told to stop: the runs' processes checkpoint and exit, then the worker hands their jobs back and
  // closes. Both need Redis, and BullMQ's graceful close waits for it forever; so once the processes
  // are gone, a worker whose Redis does not answer closes without it: the jobs it held go back to the
  // queue when their locks lapse, as a crashed worker's do. Pausing stops it fetching meanwhile
  // without starting BullMQ's close, which a forced close could not then cut short.
  const stopWorker = () => {
    stopping.abort();
    worker.pause(true).catch(() => undefined); // with Redis away it may fail: the close below still runs
    void (async () => {
      while (children > 0) await sleep(200);
      if (
        await untilReachable(target, CLOSE_PROBE_MS).then(
          () => true,
          () => false,
        )
      )
        return void worker.close();
      io.err(`worker: redis at ${target.display} does not answer; exiting without handing the runs back (they go back to the queue when their locks lapse)`);
      await worker.close(true);
    })();
  };
  options.signal?.addEventListener('abort', stopWorker, { once: true });
  try {
    await running;
  } finally {
    options.signal?.removeEventListener('abort', stopWorker);
    await worker.close();
  }
  return { completed, failed, handedBack, ...(fatal ? { fatal } : {}) };
}
