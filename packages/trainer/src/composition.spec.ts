import 'reflect-metadata';
import { container } from 'tsyringe';
import { bufferCount, filter, lastValueFrom, map, toArray } from 'rxjs';
import { buildRun } from '@skd/config';
import { EVALUATORS, SAMPLER, type Evaluator, type KdSampler } from '@skd/core';
import { SupervisedSampler } from '@skd/samplers';
import { Trainer } from './trainer';

// docs/architecture.md shows this test's body as the example of overriding components.
const config = {
  seed: 1,
  backend: 'cpu',
  tokenizer: { kind: 'bytes' },
  student: { kind: 'gpt', options: { layers: 1, dModel: 16, heads: 2, contextLength: 64 } },
  sampler: { kind: 'supervised' },
  divergence: { kind: 'cross-entropy' },
  dataset: {
    kind: 'inline',
    options: {
      train: [
        { prompt: '2+3=', response: '5' },
        { prompt: '1+1=', response: '2' },
      ],
      test: [{ prompt: '2+2=', response: '4' }],
    },
  },
  evaluators: [{ kind: 'exact-match' }],
  training: { steps: 6, batchSize: 2, evalEvery: 0, checkpointEvery: 0, maxNewTokens: 2 },
};

describe('composing a run from the container', () => {
  it("uses a program's own sampler and evaluators, registered under their tokens, in place of the config's", async () => {
    let sampled = 0;
    const supervised = new SupervisedSampler({ pad: 256, contextLength: 64 });
    const counting: KdSampler = { sample: (batch) => ((sampled += 1), supervised.sample(batch)) };
    const length: Evaluator = {
      name: 'length',
      evaluate: async (predictions) => ({ meanLength: predictions.reduce((n, p) => n + p.text.length, 0) / predictions.length }),
    };
    const lab = container.createChildContainer();
    lab.register(SAMPLER, { useValue: counting });
    lab.register(EVALUATORS, { useValue: [length] });

    const run = await buildRun(config, { parentContainer: lab });
    expect(run.sampler).toBe(counting);
    expect(run.evaluators).toEqual([length]);
    const trainer = new Trainer(run);
    const started = lastValueFrom(
      trainer.events$.pipe(
        filter((event) => event.type === 'run-started'),
        toArray(),
      ),
    );
    // The run's events as a stream: the loss averaged over pairs of steps, collected when the run ends.
    const losses = lastValueFrom(
      trainer.events$.pipe(
        filter((event) => event.type === 'step'),
        map((event) => event.loss),
        bufferCount(2),
        map((pair) => (pair[0] as number) / 2 + (pair[1] as number) / 2),
        toArray(),
      ),
    );
    const result = await trainer.run({ runId: 'lab' });
    trainer.dispose();
    expect(sampled).toBe(6);
    expect((await started).map((event) => event.runId)).toEqual(['lab']);
    expect(Object.keys(result.finalMetrics)).toContain('meanLength');
    expect(Object.keys(result.finalMetrics)).not.toContain('exactMatch');
    expect(await losses).toHaveLength(3);
    run.dispose();
    // The run did not dispose what the program owns: its sampler still samples.
    const again = await counting.sample({ prompts: [[1, 2]], references: [[3, 257]], ids: ['x'] }, { step: 0, totalSteps: 1 });
    expect(again.tokens.shape).toEqual([1, 4]);
    again.dispose();
    lab.dispose();
  });

  it('builds every component from the config when the parent provides none', async () => {
    const run = await buildRun(config, { parentContainer: container.createChildContainer() });
    expect(run.sampler).toBeInstanceOf(SupervisedSampler);
    expect(run.evaluators.map((e) => e.name)).toEqual(['exact-match']);
    run.dispose();
  });
});
