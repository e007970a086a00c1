import * as fs from 'node:fs';
import { FormatError, type RunEvent } from '@skd/core';

/**
 * The events of a `metrics.jsonl`, one per line, as written. A line that is not a JSON event is a
 * FormatError naming `file:line`, except a torn last line (the process died mid-write), which is dropped.
 */
export function readRunEvents(file: string): RunEvent[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const events: RunEvent[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch (cause) {
      if (i === lines.length - 1) return; // no newline yet: the write was cut short, the step is replayed on resume
      throw new FormatError(`${file}:${i + 1}`, `not a JSON event: ${(cause as Error).message}`, { cause });
    }
    if (event === null || typeof event !== 'object' || typeof (event as { type?: unknown }).type !== 'string') {
      throw new FormatError(`${file}:${i + 1}`, 'not a run event (an object with a "type")');
    }
    events.push(event as RunEvent);
  });
  return events;
}

/**
 * A run's history as if it had never stopped. A resume restarts from its checkpoint, so the steps,
 * evaluations and checkpoints logged after that checkpoint are computed (and logged) again: the later
 * record replaces the earlier, and statistics over the history count every step exactly once.
 */
export function runHistory(events: readonly RunEvent[]): RunEvent[] {
  const history: RunEvent[] = [];
  for (const event of events) {
    if (event.type === 'run-started' && history.length > 0) {
      const from = event.startStep;
      for (let i = history.length - 1; i >= 0; i -= 1) {
        const old = history[i] as RunEvent;
        if ((old.type === 'step' || old.type === 'eval' || old.type === 'checkpoint') && old.step > from) history.splice(i, 1);
      }
    }
    history.push(event);
  }
  return history;
}

/** Mean of a sampler statistic (e.g. acceptanceRate) over every step of the history; null when no step has it. */
export function meanSamplerStat(history: readonly RunEvent[], name: string): number | null {
  const values = history.flatMap((e) => (e.type === 'step' && e.sampler[name] !== undefined ? [e.sampler[name] as number] : []));
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}
