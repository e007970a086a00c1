import * as fs from 'node:fs';
import * as path from 'node:path';
import { Queue, type JobState } from 'bullmq';
import { SkdError } from '@skd/core';
import { loadExperimentConfig } from '../experiment';
import type { Io } from '../io';
import type { LoadedSweep } from '../sweep';
import { QUEUE_NAME, connectionOptions, isRunProgress, sweepJobs, type RedisTarget, type RunJobData } from './jobs';
import { untilReachable } from './redis';
import { isFinished, progressLine, statusCounts, type RunState, type RunStatus } from './status';

type SweepJob = ReturnType<typeof sweepJobs>[number];

/** A BullMQ queue handle on a reachable Redis; its connection errors are kept, not thrown (a restart is ridden out). */
export async function openQueue(target: RedisTarget): Promise<{ queue: Queue<RunJobData>; lastError: () => Error | undefined }> {
  await untilReachable(target);
  const queue = new Queue<RunJobData>(QUEUE_NAME, { connection: connectionOptions(target) });
  let last: Error | undefined;
  queue.on('error', (error) => {
    last = error;
  });
  return { queue, lastError: () => last };
}

const summaryOf = (data: RunJobData) => path.join(data.out, data.name, 'summary.json');

/**
 * Adds the sweep's runs to the queue, one job per run with the run's name in its id: enqueuing the
 * same sweep again adds nothing, except that failed runs are tried again (after a fix) and runs a
 * local sweep already finished are left out. Every run's config is validated first, so a typo fails
 * here, before any worker starts on it.
 */
export async function enqueueSweep(sweep: LoadedSweep, queue: Queue<RunJobData>, io: Io): Promise<SweepJob[]> {
  const jobs = sweepJobs(sweep);
  for (const job of jobs) {
    try {
      await loadExperimentConfig(job.data.config, job.data.sets);
    } catch (error) {
      if (error instanceof SkdError) throw new SkdError(`run ${job.data.name} of ${sweep.file}: ${error.message}`, error.hint ? { hint: error.hint } : {});
      throw error;
    }
  }
  let retried = 0;
  let earlier = 0;
  const fresh: SweepJob[] = [];
  for (const job of jobs) {
    const existing = await queue.getJob(job.id);
    if (!existing) {
      if (fs.existsSync(summaryOf(job.data))) earlier += 1;
      else fresh.push(job);
      continue;
    }
    if ((await existing.getState()) === 'failed') {
      await existing.retry('failed');
      retried += 1;
      io.err(`retrying ${job.data.name} (it failed: ${(existing.failedReason ?? '').split('\n')[0]})`);
    }
  }
  // Ids make this idempotent: two shells enqueuing the same sweep at once add each run once.
  await queue.addBulk(
    fresh.map((job) => ({ name: job.data.name, data: job.data, opts: { jobId: job.id, attempts: 1, removeOnComplete: false, removeOnFail: false } })),
  );
  const already = jobs.length - fresh.length - retried - earlier;
  io.out(
    `queued ${fresh.length} of ${jobs.length} runs of ${sweep.file}` +
      [already ? `${already} already in the queue` : '', retried ? `${retried} failed runs retried` : '', earlier ? `${earlier} finished earlier` : '']
        .filter(Boolean)
        .map((s) => `, ${s}`)
        .join(''),
  );
  return jobs;
}

const STATES: Partial<Record<JobState | 'unknown', RunState>> = {
  waiting: 'waiting',
  prioritized: 'waiting',
  'waiting-children': 'waiting',
  delayed: 'delayed',
  active: 'active',
  completed: 'completed',
  failed: 'failed',
};

/** Where every run of a sweep is, from the queue (and the run folders, for runs it never held). */
export async function sweepStatus(queue: Queue<RunJobData>, jobs: readonly SweepJob[]): Promise<RunStatus[]> {
  return Promise.all(
    jobs.map(async ({ id, data }): Promise<RunStatus> => {
      const job = await queue.getJob(id);
      if (!job) return { name: data.name, state: fs.existsSync(summaryOf(data)) ? 'done earlier' : 'not enqueued' };
      const state = STATES[await job.getState()] ?? 'not enqueued';
      return {
        name: data.name,
        state,
        ...(isRunProgress(job.progress) ? { progress: job.progress } : {}),
        ...(state === 'failed' && job.failedReason ? { error: job.failedReason.split('\n')[0] } : {}),
        ...(job.stalledCounter ? { stalled: job.stalledCounter } : {}),
      };
    }),
  );
}

export interface FollowResult {
  readonly runs: RunStatus[];
  /** Stopped by the signal before every run ended (the runs go on in the queue). */
  readonly interrupted: boolean;
}

/**
 * Follows a queued sweep until every run has completed or failed: on a terminal one redrawn line per
 * run, elsewhere a line when a run changes state (and an active run's progress every few seconds).
 * Redis going away meanwhile is reported and waited out.
 */
export async function followSweep(
  queue: Queue<RunJobData>,
  jobs: readonly SweepJob[],
  io: Io,
  options: { signal?: AbortSignal; intervalMs?: number; lastError?: () => Error | undefined } = {},
): Promise<FollowResult> {
  const interval = options.intervalMs ?? 1000;
  const width = Math.max(...jobs.map((j) => j.data.name.length));
  const printed = new Map<string, { state: RunState; at: number; line: string }>();
  let runs: RunStatus[] = [];
  let unreachableSince: number | undefined;
  for (;;) {
    try {
      runs = await sweepStatus(queue, jobs);
      if (unreachableSince !== undefined) io.err(`redis is back after ${Math.round((Date.now() - unreachableSince) / 1000)} s`);
      unreachableSince = undefined;
    } catch (error) {
      if (unreachableSince === undefined) io.err(`redis unreachable (${(options.lastError?.() ?? (error as Error)).message}); waiting for it`);
      unreachableSince ??= Date.now();
    }
    if (unreachableSince === undefined) {
      const lines = runs.map((run) => progressLine(run, width));
      if (io.board) io.board([...lines, statusCounts(runs)]);
      else {
        runs.forEach((run, i) => {
          const last = printed.get(run.name);
          const line = lines[i] as string;
          const due = run.state === 'active' && (!last || Date.now() - last.at > 5000) && line !== last?.line;
          if (!last || last.state !== run.state || due) {
            io.err(line);
            printed.set(run.name, { state: run.state, at: Date.now(), line });
          }
        });
      }
      if (runs.every((run) => isFinished(run.state))) return { runs, interrupted: false };
    }
    if (options.signal?.aborted) return { runs, interrupted: true };
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, interval);
      options.signal?.addEventListener('abort', wake, { once: true });
    });
  }
}
