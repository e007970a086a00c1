/**
 * The process a queue worker starts for each run (`fork`): it trains the run as `skd sweep` would,
 * and talks to the worker over IPC only. Training here leaves the worker's event loop free to renew
 * its job locks however long a step takes. When the worker goes away (its IPC channel closes, as on
 * SIGKILL) or asks it to stop, the current step finishes, a checkpoint is written, and it exits.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { SkdError, type RunEvent } from '@skd/core';
import { RunFinishedError, runExperiment } from '../experiment';
import type { Io } from '../io';
import { RunDirBusyError } from '@skd/trainer';
import type { RunJobData, RunProgress } from './jobs';

/** Worker -> runner. */
export type RunnerCommand = { readonly type: 'run'; readonly data: RunJobData } | { readonly type: 'stop' };

/** Runner -> worker. */
export type RunnerMessage =
  | { readonly type: 'line'; readonly stream: 'out' | 'err'; readonly line: string }
  | { readonly type: 'progress'; readonly progress: RunProgress }
  | { readonly type: 'done'; readonly reason: string; readonly step: number }
  /** `bad`: the run's own config or data is wrong (retrying cannot help); `busy`: another process holds its folder. */
  | { readonly type: 'error'; readonly message: string; readonly bad: boolean; readonly busy: boolean };

/** Turns a run's events into the progress a worker publishes: step, ETA at this process's pace, loss, acceptance. */
export function progressTracker(worker: string): (event: RunEvent) => RunProgress | undefined {
  let totalSteps = 0;
  let step = 0;
  let seconds = 0;
  let steps = 0;
  let latest: Omit<RunProgress, 'step' | 'totalSteps'> = {};
  return (event) => {
    switch (event.type) {
      case 'run-started':
        totalSteps = event.totalSteps;
        step = event.startStep;
        break;
      case 'step': {
        step = event.step;
        totalSteps = event.totalSteps;
        seconds += event.seconds;
        steps += 1;
        const acceptance = event.sampler['acceptanceRate'];
        latest = { etaSeconds: (seconds / steps) * (totalSteps - step), loss: event.loss, ...(acceptance !== undefined ? { acceptanceRate: acceptance } : {}) };
        break;
      }
      case 'progress':
        return { step, totalSteps, ...latest, phase: { name: event.phase, done: event.done, total: event.total }, worker };
      default:
        return undefined;
    }
    return { step, totalSteps, ...latest, worker };
  };
}

function send(message: RunnerMessage): void {
  if (process.connected) process.send?.(message);
}

async function runJob(data: RunJobData, signal: AbortSignal): Promise<void> {
  const io: Io = {
    out: (line) => send({ type: 'line', stream: 'out', line }),
    err: (line) => send({ type: 'line', stream: 'err', line }),
    progress: () => undefined,
  };
  const track = progressTracker(`${os.hostname()}:${process.ppid}`);
  const runDir = path.join(data.out, data.name);
  try {
    const result = await runExperiment({
      configFile: data.config,
      sets: data.sets,
      out: runDir,
      resume: 'if-started',
      mode: data.mode,
      group: data.group,
      io,
      signal,
      onEvent: (event) => {
        const progress = track(event);
        if (progress) send({ type: 'progress', progress });
      },
    });
    send({ type: 'done', reason: result.reason, step: result.step });
  } catch (error) {
    // Finished meanwhile by another process (a local sweep over the same folder): nothing left to do.
    if (error instanceof RunFinishedError) return send({ type: 'done', reason: 'completed', step: error.steps });
    const bad = error instanceof SkdError;
    const message = bad ? error.message : String((error as Error).stack ?? error);
    send({ type: 'error', message, bad, busy: error instanceof RunDirBusyError });
  }
}

if (require.main === module) {
  const stop = new AbortController();
  const abort = () => stop.abort();
  // The worker asks (its own SIGINT/SIGTERM), or is gone; a Ctrl-C in the worker's terminal reaches this process too.
  process.on('disconnect', abort);
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  process.on('message', (command: RunnerCommand) => {
    if (command.type === 'stop') abort();
    else
      void runJob(command.data, stop.signal).finally(() => {
        process.disconnect?.();
        setImmediate(() => process.exit(0));
      });
  });
}
