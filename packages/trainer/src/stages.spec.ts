import { TestScheduler } from 'rxjs/testing';
import type { RunEvent } from '@skd/core';
import { earlyStopping, progressLines } from './stages';

const step = (n: number, extra: Record<string, number> = {}): RunEvent => ({
  type: 'step',
  step: n,
  totalSteps: 4,
  loss: 1 / n,
  learningRate: 1e-3,
  gradNorm: 1,
  tokens: 10,
  tokensPerSecond: 100,
  seconds: 2,
  sampler: extra,
});
const evalAt = (n: number, accuracy: number): RunEvent => ({ type: 'eval', step: n, split: 'eval', metrics: { accuracy } });

describe('stream stages (marble tests)', () => {
  it('progressLines draws a bar with an ETA from the mean step time and the live acceptance rate', () => {
    new TestScheduler((a, b) => expect(a).toEqual(b)).run(({ cold, expectObservable }) => {
      const events = cold<RunEvent>('a-b-c|', { a: step(1, { acceptanceRate: 0.5 }), b: { type: 'progress', phase: 'x', done: 1, total: 2 }, c: step(2) });
      expectObservable(events.pipe(progressLines(4))).toBe('x---y|', {
        x: '[=   ] 1/4 ETA 0:06 loss 1.0000 100 tok/s acceptance 50.0%',
        y: '[==  ] 2/4 ETA 0:04 loss 0.5000 100 tok/s',
      });
    });
  });

  it('earlyStopping fires once after `patience` evaluations without improvement', () => {
    new TestScheduler((a, b) => expect(a).toEqual(b)).run(({ cold, expectObservable }) => {
      const events = cold<RunEvent>('a-b-c-d-e|', { a: evalAt(1, 0.5), b: evalAt(2, 0.6), c: evalAt(3, 0.6), d: evalAt(4, 0.55), e: evalAt(5, 0.4) });
      expectObservable(events.pipe(earlyStopping('accuracy', 2))).toBe('------(s|)', { s: 4 });
      expectObservable(events.pipe(earlyStopping('accuracy', 2, 'min'))).toBe('----(s|)', { s: 3 });
    });
  });
});
