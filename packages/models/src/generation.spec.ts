import * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, Rng } from '@skd/core';
import { tensorsLeakedBy, useBackend } from '@skd/testing';
import { BigramModel } from './bigram-model';
import { chooseToken, generate, warpedDistribution, type SamplingOptions } from './generation';
import { GptModel, gptConfigSchema } from './gpt';

beforeAll(() => useBackend('cpu'));

const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];

function chiSquare(counts: number[], probs: ArrayLike<number>, n: number): number {
  let chi = 0;
  counts.forEach((c, i) => {
    const e = (probs[i] as number) * n;
    if (e > 0) chi += (c - e) ** 2 / e;
    else expect(c).toBe(0);
  });
  return chi;
}

describe('decoding strategies', () => {
  it('temperature divides the logits (softmax(l / T), checked by hand)', () => {
    const p = warpedDistribution(logits, { temperature: 0.5 });
    const byHand = [0.25, 0.09, 0.0225, 0.0025].map((x) => x / 0.365); // p^2, normalised
    byHand.forEach((x, i) => expect(p[i]).toBeCloseTo(x, 12));
    expect(warpedDistribution(logits)[0]).toBeCloseTo(0.5, 12);
  });

  it('top-k keeps exactly the k most likely tokens', () => {
    const p = warpedDistribution(logits, { topK: 2 });
    expect(Array.from(p)).toEqual([0.5 / 0.8, 0.3 / 0.8, 0, 0].map((x) => expect.closeTo(x, 12)));
  });

  it('top-p keeps the smallest most-likely set reaching p', () => {
    const atBoundary = warpedDistribution(logits, { topP: 0.8 - 1e-9 });
    expect(Array.from(atBoundary).map((x) => x > 0)).toEqual([true, true, false, false]);
    const past = warpedDistribution(logits, { topP: 0.81 });
    expect(Array.from(past).map((x) => x > 0)).toEqual([true, true, true, false]);
    expect(warpedDistribution(logits, { topP: 0.1 })[0]).toBe(1);
  });

  it('greedy picks the argmax whatever the other options say', () => {
    expect(chooseToken([0.1, 3, 2.9], { greedy: true, temperature: 100, topK: 3 }, Rng.create(1))).toBe(1);
  });

  it('samples the warped distribution (chi-square, 20000 draws, p > 0.001)', () => {
    const rng = Rng.create(9);
    const options = { temperature: 0.7, topK: 3 };
    const expected = warpedDistribution(logits, options);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) {
      const t = chooseToken(logits, options, rng);
      counts[t] = (counts[t] as number) + 1;
    }
    expect(counts[3]).toBe(0);
    expect(chiSquare(counts, expected, 20_000)).toBeLessThan(13.8); // chi-square(2) at p = 0.001
  });

  it('rejects bad options with the value', () => {
    expect(() => chooseToken(logits, { temperature: 0 }, Rng.create(1))).toThrow('temperature must be > 0, got 0');
    const model = new BigramModel({ vocabSize: 4, contextLength: 8, seed: 1 });
    const base = { maxNewTokens: 2, eos: 3, pad: 0, rng: Rng.create(1) };
    return Promise.all([
      expect(generate(model, [[1]], { ...base, temperature: 0 })).rejects.toThrow('temperature must be > 0, got 0'),
      expect(generate(model, [[1]], { ...base, topP: 1.5 })).rejects.toThrow('topP must be in (0, 1], got 1.5'),
      expect(generate(model, [[1]], { ...base, topK: -1 })).rejects.toThrow('topK must be an integer >= 0'),
      expect(generate(model, [[]], base)).rejects.toThrow('at least one token'),
    ]).finally(() => model.dispose());
  });
});

describe('generate as one native loop (wasm)', () => {
  beforeAll(() => useBackend('wasm'));
  afterAll(() => useBackend('cpu'));

  it('gives exactly the step-by-step tokens and random draws, for every sampling setting', async () => {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: 23, contextLength: 40, dModel: 32, heads: 2, layers: 2 }), { seed: 4 });
    model.trainableVariables.forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 40 + i)));
    const stepByStep = Object.assign(Object.create(model) as GptModel, { generateTokens: undefined });
    const prompts = [[1, 2, 3, 4], [5], [6, 7], [8, 9, 10]];
    const settings: SamplingOptions[] = [{ greedy: true }, {}, { temperature: 0.6 }, { topK: 4 }, { topP: 0.7 }, { temperature: 1.4, topK: 10, topP: 0.95 }];
    for (const sampling of settings) {
      const run = async (m: GptModel) => {
        const rng = Rng.create(11);
        const result = await generate(m, prompts, { ...sampling, maxNewTokens: 20, eos: 22, pad: 0, rng });
        return { ...result, rng: rng.getState() };
      };
      const native = await run(model);
      expect(native).toEqual(await run(stepByStep));
      expect(native.tokens.some((row) => row.length === 20)).toBe(true);
    }
    const spy = jest.spyOn(model, 'decode');
    await generate(model, prompts, { maxNewTokens: 20, eos: 22, pad: 0, rng: Rng.create(1) });
    expect(spy).toHaveBeenCalledTimes(1); // the prompt; the loop runs natively
    spy.mockRestore();
    model.dispose();
  });

  it('keeps numTensors flat and reports a non-finite model like the step-by-step loop', async () => {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: 13, contextLength: 24, dModel: 16, heads: 2 }), { seed: 2 });
    const leaked = await tensorsLeakedBy(async () => {
      for (let i = 0; i < 20; i++) await generate(model, [[1, 2], [3]], { maxNewTokens: 6, eos: 12, pad: 0, rng: Rng.create(i), temperature: 0.9 });
    });
    expect(leaked).toBe(0);
    model.trainableVariables.forEach((v) => v.name.endsWith('ln_f.bias') && v.assign(tf.fill(v.shape, Number.NaN)));
    await expect(generate(model, [[1, 2]], { maxNewTokens: 4, eos: 12, pad: 0, rng: Rng.create(1) })).rejects.toThrow(NonFiniteError);
    model.dispose();
  });
});

describe('generate', () => {
  // A bigram table where each token deterministically leads to the next, and 3 leads to EOS (4).
  const table = [0, 1, 2, 3, 4].map((from) => [0, 1, 2, 3, 4].map((to) => (to === Math.min(from + 1, 4) ? 50 : 0)));

  it('finishes rows at EOS at different times and stops at maxNewTokens', async () => {
    const model = new BigramModel({ vocabSize: 5, contextLength: 16, seed: 1, table });
    const result = await generate(model, [[0], [2, 2], [1]], { maxNewTokens: 3, eos: 4, pad: 0, rng: Rng.create(1), greedy: true });
    expect(result.tokens).toEqual([
      [1, 2, 3],
      [3, 4],
      [2, 3, 4],
    ]);
    expect(result.finished).toEqual([false, true, true]);
    expect(result.forwardPasses).toBe(3);
    model.dispose();
  });

  it('gives the same text for the same seed and different text for another seed', async () => {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: 11, contextLength: 32, dModel: 16, heads: 2 }), { seed: 3 });
    const run = (seed: number) => generate(model, [[1, 2, 3], [4]], { maxNewTokens: 12, eos: 10, pad: 0, rng: Rng.create(seed), temperature: 1.5 });
    const a = await run(1);
    expect((await run(1)).tokens).toEqual(a.tokens);
    expect((await run(2)).tokens).not.toEqual(a.tokens);
    model.dispose();
  });

  it('decodes batched GPT rows like each row generated alone (greedy)', async () => {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: 11, contextLength: 32, dModel: 16, heads: 2 }), { seed: 8 });
    const prompts = [[1, 2, 3, 4], [5], [6, 7]];
    const options = { maxNewTokens: 6, eos: 10, pad: 0, rng: Rng.create(1), greedy: true };
    const batched = await generate(model, prompts, options);
    for (const [i, prompt] of prompts.entries()) {
      expect((await generate(model, [prompt], options)).tokens[0]).toEqual(batched.tokens[i]);
    }
    model.dispose();
  });
});
