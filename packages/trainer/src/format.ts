import { map, type OperatorFunction } from 'rxjs';
import type { RunEvent } from '@skd/core';

const fixed = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** One human-readable line per event, for logs and non-interactive terminals. */
export function formatEvent(event: RunEvent): string {
  switch (event.type) {
    case 'run-started':
      return `run ${event.runId}: steps ${event.startStep}..${event.totalSteps} on ${event.backend}`;
    case 'step': {
      const sampler = Object.entries(event.sampler)
        .map(([k, v]) => `${k} ${fixed(v, 3)}`)
        .join(' ');
      return `step ${event.step}/${event.totalSteps} loss ${fixed(event.loss)} lr ${event.learningRate.toExponential(2)} grad ${fixed(event.gradNorm, 3)} ${Math.round(event.tokensPerSecond)} tok/s${sampler ? ` | ${sampler}` : ''}`;
    }
    case 'eval':
      return `eval ${event.split} @ step ${event.step}: ${Object.entries(event.metrics)
        .map(([k, v]) => {
          const interval = event.intervals?.[k];
          return `${k} ${fixed(v)}${interval ? ` [${fixed(interval[0])}, ${fixed(interval[1])}]` : ''}`;
        })
        .join(' ')}`;
    case 'checkpoint':
      return `checkpoint @ step ${event.step}: ${event.path}`;
    case 'progress':
      return `${event.phase} ${event.done}/${event.total}`;
    case 'warning':
      return `warning: ${event.message}`;
    case 'run-ended':
      return `run ended at step ${event.step}: ${event.reason}${event.message ? ` (${event.message})` : ''}`;
  }
}

/** Stream stage: run events → log lines. */
export function toLogLines(): OperatorFunction<RunEvent, string> {
  return map(formatEvent);
}

/** Stream stage: run events → JSON lines (one object per line, plain numbers). */
export function toJsonLines(): OperatorFunction<RunEvent, string> {
  return map((event) => JSON.stringify(event));
}
