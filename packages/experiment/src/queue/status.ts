import { clock } from '@skd/trainer';
import type { RunProgress } from './jobs';

/**
 * Where a run of a queued sweep is: BullMQ's job states, plus `not enqueued` (no job yet) and
 * `done earlier` (finished by a local sweep before it was queued: its folder has a summary).
 */
export type RunState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'not enqueued' | 'done earlier';

export interface RunStatus {
  readonly name: string;
  readonly state: RunState;
  readonly progress?: RunProgress;
  /** Why it failed, as the worker saw it. */
  readonly error?: string;
  /** Times a worker stopped answering while running it (its job was then taken over). */
  readonly stalled?: number;
}

/** A run is over once completed, failed, or finished before the queue. */
export const isFinished = (state: RunState): boolean => state === 'completed' || state === 'failed' || state === 'done earlier';

/** The detail of a run's state: step and ETA while active, the error when failed. */
export function statusDetail(run: RunStatus): string {
  const p = run.progress;
  if (run.state === 'failed') return run.error ?? 'failed';
  const lost = run.stalled ? `taken over after a lost worker (${run.stalled}x)` : '';
  // Handed back or taken over: it resumes from its last checkpoint.
  if (run.state === 'waiting' && p) return [`resumes from its checkpoint (was at step ${p.step}/${p.totalSteps})`, lost].filter(Boolean).join('; ');
  if (run.state !== 'active' || !p) return lost;
  const parts = [`step ${p.step}/${p.totalSteps}`];
  if (p.phase) parts.push(`${p.phase.name} ${p.phase.done}/${p.phase.total}`);
  if (p.etaSeconds !== undefined) parts.push(`ETA ${clock(p.etaSeconds)}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.acceptanceRate !== undefined) parts.push(`acceptance ${(100 * p.acceptanceRate).toFixed(1)}%`);
  if (p.worker) parts.push(`on ${p.worker}`);
  return parts.join('  ');
}

/** Counts by state, in a fixed order: "2 completed, 1 active, 3 waiting". */
export function statusCounts(runs: readonly RunStatus[]): string {
  const order: RunState[] = ['completed', 'done earlier', 'active', 'waiting', 'delayed', 'failed', 'not enqueued'];
  return order
    .map((state) => [state, runs.filter((r) => r.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

/** The table `skd sweep --status` prints: one row per run (name, state, detail), then the counts. */
export function renderStatus(runs: readonly RunStatus[]): string[] {
  const width = Math.max(3, ...runs.map((r) => r.name.length));
  const stateWidth = Math.max(5, ...runs.map((r) => r.state.length));
  const rows = runs.map((r) => `${r.name.padEnd(width)}  ${r.state.padEnd(stateWidth)}  ${statusDetail(r)}`.trimEnd());
  return [`${'run'.padEnd(width)}  ${'state'.padEnd(stateWidth)}  detail`, ...rows, `${runs.length} runs: ${statusCounts(runs)}`];
}

/** One line of the live view (`skd sweep --queue` without --no-wait): a run and where it is. */
export function progressLine(run: RunStatus, width: number): string {
  return `${run.name.padEnd(width)}  ${run.state.padEnd(12)}  ${statusDetail(run)}`.trimEnd();
}
