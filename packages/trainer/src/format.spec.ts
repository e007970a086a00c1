import { TestScheduler } from 'rxjs/testing';
import type { RunEvent } from '@skd/core';
import { formatEvent, toJsonLines, toLogLines } from './format';

const step: RunEvent = {
  type: 'step',
  step: 3,
  totalSteps: 10,
  loss: 1.23456,
  learningRate: 1e-4,
  gradNorm: 0.5,
  tokens: 100,
  tokensPerSecond: 512.4,
  seconds: 0.2,
  sampler: { acceptanceRate: 0.75 },
};
const ended: RunEvent = { type: 'run-ended', step: 10, reason: 'completed' };

describe('event formatting stages', () => {
  it('formats steps with the sampler statistics', () => {
    expect(formatEvent(step)).toBe('step 3/10 loss 1.2346 lr 1.00e-4 grad 0.500 512 tok/s | acceptanceRate 0.750');
    expect(formatEvent({ ...step, loss: Number.NaN, sampler: {} })).toContain('loss NaN');
  });

  it('maps each event to one line, in order and on time (marble test)', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const events = cold<RunEvent>('-a--b|', { a: step, b: ended });
      expectObservable(events.pipe(toLogLines())).toBe('-x--y|', { x: formatEvent(step), y: 'run ended at step 10: completed' });
      expectObservable(events.pipe(toJsonLines())).toBe('-x--y|', { x: JSON.stringify(step), y: JSON.stringify(ended) });
    });
  });
});
