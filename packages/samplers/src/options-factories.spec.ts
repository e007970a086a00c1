import { ConfigError, Rng, type Tokenizer } from '@skd/core';
import { BigramModel } from '@skd/models';
import { randomTable, useBackend } from '@skd/testing';
import { skdEntry, skdSamplerOptions, onPolicySamplerOptions } from './entries';

beforeAll(() => useBackend('cpu'));

describe('sampler option factories (building samplers without a config)', () => {
  it('fill every default a config would, keep the values given', () => {
    const options = skdSamplerOptions({ topK: 5 });
    expect(options).toEqual(skdEntry.options.parse({ topK: 5 }));
    expect(options.topK).toBe(5);
    expect(options.draftBlock).toBe(5);
    expect(options.replace).toBe('resample');
    expect(skdSamplerOptions().topK).toBe(25);
    expect(onPolicySamplerOptions({ maxNewTokens: 7 }).maxNewTokens).toBe(7);
  });

  it('refuse a bad value or an unknown key with a ConfigError naming the factory and the field', () => {
    expect(() => skdSamplerOptions({ topK: 0 })).toThrow(ConfigError);
    expect(() => skdSamplerOptions({ topK: 0 })).toThrow(/skdSamplerOptions\(\):\n {2}- topK: .*got 0/);
    expect(() => skdSamplerOptions({ topk: 5 } as never)).toThrow(/topk: unknown key \(did you mean "topK"\?\)/);
  });

  it('refuse K-decay settings that would be ignored', () => {
    expect(() => skdSamplerOptions({ kDecayUnit: 'rounds' })).toThrow(/kDecayUnit: kDecayUnit has no effect without kDecay: true/);
    expect(() => skdSamplerOptions({ kDecayHorizon: 10 })).toThrow(/kDecayHorizon: kDecayHorizon has no effect without kDecay: true/);
    expect(() => skdSamplerOptions({ kDecay: true, acceptance: 'top-p', topP: 0.5 })).toThrow(/kDecay: kDecay shrinks K, which only top-k acceptance uses/);
    expect(skdSamplerOptions({ kDecay: true, kDecayUnit: 'rounds', kDecayHorizon: 64 })).toMatchObject({ kDecayUnit: 'rounds', kDecayHorizon: 64 });
  });

  it('give options a built-in entry creates a working sampler from', async () => {
    const V = 6;
    const tokenizer = { vocabSize: V, special: { pad: 0, eos: V - 1 } } as unknown as Tokenizer;
    const student = BigramModel.fromProbabilities(randomTable(V, 1));
    const teacher = BigramModel.fromProbabilities(randomTable(V, 2, 2));
    const sampler = await skdEntry.create(skdSamplerOptions({ topK: 2, replace: 'argmax', maxNewTokens: 3 }), {
      student,
      teacher,
      tokenizer,
      rng: Rng.create(1),
      baseDir: '.',
    });
    const batch = await sampler.sample(
      {
        prompts: [[0], [1]],
        references: [
          [2, V - 1],
          [3, V - 1],
        ],
        ids: ['a', 'b'],
      },
      { step: 0, totalSteps: 1 },
    );
    expect(batch.tokens.shape[0]).toBe(2);
    expect(batch.stats['acceptanceRate']).toBeGreaterThanOrEqual(0);
    batch.dispose();
    sampler.dispose?.();
    student.dispose();
    teacher.dispose();
  });
});
