import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { SkdError } from '@skd/core';
import type { LoadedSweep } from '../sweep';

/** The BullMQ queue every sweep's runs go through; sweeps are told apart by their job ids. */
export const QUEUE_NAME = 'skd-runs';

/** Where a queue lives: `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS). */
export interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
  /** The URL without its password, for messages. */
  readonly display: string;
}

export function parseRedisUrl(text: string): RedisTarget {
  const refuse = (why: string) =>
    new SkdError(`--queue ${JSON.stringify(text)}: ${why}`, { hint: 'give it as redis://HOST:PORT[/DB], e.g. redis://10.0.0.5:6379/0' });
  let url: URL;
  if (!/^[a-z][\w+.-]*:\/\//i.test(text)) throw refuse('not a URL');
  try {
    url = new URL(text);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw refuse(`the scheme must be redis:// or rediss://, not ${url.protocol}//`);
  if (!url.hostname) throw refuse('no host');
  const port = url.port ? Number(url.port) : 6379;
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw refuse(`the database must be a number, not "${dbText}"`);
  if (url.search || url.hash) throw refuse('options after "?" or "#" are not read');
  const db = dbText === '' ? 0 : Number(dbText);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host: hostname,
    port,
    db,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
    display: `${url.protocol}//${url.host}/${db}`,
  };
}

/** ioredis options for a target; `maxRetriesPerRequest: null` is what BullMQ's workers need to ride out a Redis restart. */
export function connectionOptions(target: RedisTarget): Record<string, unknown> {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** What a worker needs to run one run of a sweep; paths are absolute, so they mean the same on every machine sharing the storage. */
export interface RunJobData {
  readonly sweep: string;
  readonly name: string;
  readonly group: string;
  readonly config: string;
  readonly sets: readonly string[];
  /** The sweep's out folder; the run goes to `<out>/<name>`. */
  readonly out: string;
  readonly mode: 'train' | 'distill';
}

/**
 * A sweep's id in the queue: its out folder's name and a hash of its absolute path, so two sweeps
 * never share a job id and the same sweep enqueued again (from any shell) maps to the same jobs.
 */
export function sweepId(out: string): string {
  const hash = createHash('sha256').update(path.resolve(out)).digest('hex').slice(0, 10);
  return `${path.basename(out).replace(/[^\w.-]+/g, '_')}-${hash}`;
}

/** A run's job id: `<sweep id>/<run name>` (BullMQ ids may not contain ":"; run names never do). */
export function jobId(out: string, run: string): string {
  return `${sweepId(out)}/${run}`;
}

/** The jobs of a sweep, one per run, in the sweep's order. */
export function sweepJobs(sweep: LoadedSweep): { id: string; data: RunJobData }[] {
  return sweep.runs.map((run) => ({
    id: jobId(sweep.out, run.name),
    data: { sweep: sweep.file, name: run.name, group: run.group, config: sweep.base, sets: run.sets, out: sweep.out, mode: sweep.mode },
  }));
}

/** What a worker publishes as a job's progress while its run trains or evaluates. */
export interface RunProgress {
  readonly step: number;
  readonly totalSteps: number;
  /** Seconds left at this process's pace; absent before its first step. */
  readonly etaSeconds?: number;
  readonly loss?: number;
  readonly acceptanceRate?: number;
  /** Work that is not a step (evaluation, generation): its name and how far it is. */
  readonly phase?: { readonly name: string; readonly done: number; readonly total: number };
  /** The worker (host and pid) running it. */
  readonly worker?: string;
}

export function isRunProgress(value: unknown): value is RunProgress {
  return (
    typeof value === 'object' && value !== null && typeof (value as RunProgress).step === 'number' && typeof (value as RunProgress).totalSteps === 'number'
  );
}
