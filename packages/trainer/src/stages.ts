import { filter, map, scan, take, type OperatorFunction } from 'rxjs';
import type { RunEvent, StepCompleted } from '@skd/core';

/** A duration as m:ss, or h:mm:ss from an hour on (ETAs in progress lines and queue status). */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/**
 * Stream stage: step events → a progress line with a bar, ETA (mean step time so far), tokens/s and,
 * for SKD, the live acceptance rate.
 */
export function progressLines(width = 24): OperatorFunction<RunEvent, string> {
  return (events) =>
    events.pipe(
      filter((e): e is StepCompleted => e.type === 'step'),
      scan((acc, e) => ({ event: e, seconds: acc.seconds + e.seconds, steps: acc.steps + 1 }), {
        event: undefined as StepCompleted | undefined,
        seconds: 0,
        steps: 0,
      }),
      map(({ event, seconds, steps }) => {
        const e = event as StepCompleted;
        const filled = Math.round((width * e.step) / e.totalSteps);
        const eta = (seconds / steps) * (e.totalSteps - e.step);
        const acceptance = e.sampler['acceptanceRate'];
        return (
          `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${e.step}/${e.totalSteps} ETA ${clock(eta)} loss ${e.loss.toFixed(4)} ` +
          `${Math.round(e.tokensPerSecond)} tok/s` +
          (acceptance !== undefined ? ` acceptance ${(100 * acceptance).toFixed(1)}%` : '')
        );
      }),
    );
}

/**
 * Stream stage: emits once when an evaluation metric has not improved for `patience` evaluations
 * in a row (mode "max" for accuracy-like metrics, "min" for losses).
 */
export function earlyStopping(metric: string, patience: number, mode: 'max' | 'min' = 'max'): OperatorFunction<RunEvent, number> {
  return (events) =>
    events.pipe(
      filter((e): e is Extract<RunEvent, { type: 'eval' }> => e.type === 'eval' && e.metrics[metric] !== undefined),
      scan(
        (acc, e) => {
          const value = e.metrics[metric] as number;
          const better = acc.best === undefined || (mode === 'max' ? value > acc.best : value < acc.best);
          return { best: better ? value : acc.best, stale: better ? 0 : acc.stale + 1, step: e.step };
        },
        { best: undefined as number | undefined, stale: 0, step: 0 },
      ),
      filter((acc) => acc.stale >= patience),
      map((acc) => acc.step),
      take(1),
    );
}
