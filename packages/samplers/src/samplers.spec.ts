import { Rng, type Tokenizer } from '@skd/core';
import { BigramModel, generate } from '@skd/models';
import { randomTable, tensorsLeakedBy, useBackend } from '@skd/testing';
import { samplerEntries } from './entries';
import type { SamplerModels } from './generating';
import { OnPolicySampler } from './on-policy';
import { DistillmSampler } from './distillm';
import { ImitKdSampler } from './imit-kd';
import { MixedSampler } from './mixed';
import { SeqKdSampler } from './seq-kd';
import { SupervisedSampler } from './supervised';
import type { SwitchSampler } from './switch';

beforeAll(() => useBackend('cpu'));

const V = 6;
const EOS = 5;
const tokenizer = { special: { pad: 0, eos: EOS }, vocabSize: V } as unknown as Tokenizer;
const batch = { prompts: [[1], [2, 3], [4]], references: [[3, EOS], [1, 1, EOS], [EOS]], ids: ['a', 'b', 'c'] };
const models = (seed = 1): SamplerModels => ({
  student: BigramModel.fromProbabilities(randomTable(V, 1)),
  teacher: BigramModel.fromProbabilities(randomTable(V, 2, 3)),
  tokenizer,
  rng: Rng.create(seed),
});
const rowsOf = (b: { tokens: { arraySync(): unknown } }) => b.tokens.arraySync() as number[][];
const ctx = { step: 0, totalSteps: 10 };

describe('on-policy', () => {
  it("trains on the student's own samples, as generate() draws them with the same seed", async () => {
    const m = models(3);
    const sampled = await new OnPolicySampler(m, { maxNewTokens: 4, sampling: {} }).sample(batch, ctx);
    const expected = await generate(m.student, batch.prompts, { maxNewTokens: 4, eos: EOS, pad: 0, rng: Rng.create(3) });
    expect(sampled.sources).toEqual(['student', 'student', 'student']);
    expect(sampled.stats['tokensGenerated']).toBe(expected.tokens.flat().length);
    rowsOf(sampled).forEach((row, b) =>
      expect(row.slice(batch.prompts[b]?.length, (batch.prompts[b]?.length ?? 0) + (expected.tokens[b]?.length ?? 0))).toEqual(expected.tokens[b]),
    );
    sampled.dispose();
  });
});

describe('mixed (GKD)', () => {
  const base = { offPolicy: 'reference' as const, maxNewTokens: 4, studentSampling: {}, teacherSampling: { greedy: true } };

  it('with lambda 0 equals supervised, with lambda 1 equals on-policy', async () => {
    const supervised = await new SupervisedSampler({ pad: 0, contextLength: 64 }).sample(batch);
    const lambda0 = await new MixedSampler(models(), { ...base, lambda: 0 }).sample(batch);
    expect(rowsOf(lambda0)).toEqual(rowsOf(supervised));
    const onPolicyRng = Rng.create(5);
    onPolicyRng.random(); // the mixed sampler draws its per-batch coin first
    const m = models(5);
    const onPolicy = await new OnPolicySampler({ ...m, rng: onPolicyRng }, { maxNewTokens: 4, sampling: {} }).sample(batch, ctx);
    const lambda1 = await new MixedSampler(models(5), { ...base, lambda: 1 }).sample(batch);
    expect(rowsOf(lambda1)).toEqual(rowsOf(onPolicy));
    expect(lambda1.sources).toEqual(['student', 'student', 'student']);
    [supervised, lambda0, onPolicy, lambda1].forEach((b) => b.dispose());
  });

  it('uses teacher outputs off-policy when asked', async () => {
    const m = models();
    const mixed = await new MixedSampler(m, { ...base, lambda: 0, offPolicy: 'teacher' }).sample(batch);
    expect(mixed.sources).toEqual(['teacher', 'teacher', 'teacher']);
    const greedy = await generate(m.teacher as BigramModel, batch.prompts, { maxNewTokens: 4, eos: EOS, pad: 0, rng: Rng.create(1), greedy: true });
    expect(mixed.stats['tokensGenerated']).toBe(greedy.tokens.flat().length);
    mixed.dispose();
  });
});

describe('seq-kd', () => {
  it('generates each example once with the cache, and every time without it', async () => {
    const cached = new SeqKdSampler(models(), { maxNewTokens: 4, sampling: { temperature: 1.5 }, cache: true });
    const first = await cached.sample(batch);
    const second = await cached.sample(batch);
    expect(second.stats['cacheHits']).toBe(3);
    expect(second.stats['tokensGenerated']).toBe(0);
    expect(rowsOf(second)).toEqual(rowsOf(first));
    const fresh = new SeqKdSampler(models(), { maxNewTokens: 4, sampling: { temperature: 1.5 }, cache: false });
    await fresh.sample(batch).then((b) => b.dispose());
    const again = await fresh.sample(batch);
    expect(again.stats['cacheHits']).toBe(0);
    expect(again.stats['tokensGenerated']).toBeGreaterThan(0);
    [first, second, again].forEach((b) => b.dispose());
  });

  it('restores its cache from saved state (exact resume)', async () => {
    const a = new SeqKdSampler(models(), { maxNewTokens: 4, sampling: { temperature: 1.5 }, cache: true });
    const first = await a.sample(batch);
    const b = new SeqKdSampler(models(9), { maxNewTokens: 4, sampling: { temperature: 1.5 }, cache: true });
    b.setState(JSON.parse(JSON.stringify(a.getState())));
    const resumed = await b.sample(batch);
    expect(rowsOf(resumed)).toEqual(rowsOf(first));
    [first, resumed].forEach((x) => x.dispose());
  });

  it('needs a teacher', () => {
    expect(() => new SeqKdSampler({ ...models(), teacher: undefined }, { maxNewTokens: 4, sampling: {}, cache: true })).toThrow(
      'the "seq-kd" sampler needs a teacher model',
    );
  });
});

describe('imit-kd', () => {
  it('grows the student share over training and follows it row by row', async () => {
    const sampler = new ImitKdSampler(models(), { initialStudentShare: 0, finalStudentShare: 0.8, rampFraction: 0.5, maxNewTokens: 3, sampling: {} });
    expect([0, 25, 50, 100].map((s) => sampler.studentShare(s, 100))).toEqual([0, 0.4, 0.8, 0.8]);
    const start = await sampler.sample(batch, { step: 0, totalSteps: 100 });
    expect(start.sources).toEqual(['reference', 'reference', 'reference']);
    start.dispose();
    let studentRows = 0;
    for (let i = 0; i < 50; i++) {
      const late = await sampler.sample(batch, { step: 90, totalSteps: 100 });
      studentRows += late.stats['studentRows'] as number;
      late.dispose();
    }
    expect(Math.abs(studentRows / 150 - 0.8)).toBeLessThan(0.1); // 150 Bernoulli(0.8) rows: 3 standard deviations
  });
});

describe('distillm', () => {
  const options = { initialThreshold: 0.5, thresholdStep: 0.1, lossRise: 0.1, bufferSize: 4, maxNewTokens: 3, sampling: {} };

  it('uses student samples with probability threshold * (1 - step / total)', () => {
    const sampler = new DistillmSampler(models(), options);
    expect([0, 50, 100].map((s) => sampler.studentProbability(s, 100))).toEqual([0.5, 0.25, 0]);
  });

  it('raises the threshold by thresholdStep only when validation loss rises by at least lossRise', () => {
    const sampler = new DistillmSampler(models(), options);
    sampler.observe({ step: 1, validationLoss: 2.0 });
    sampler.observe({ step: 2, validationLoss: 2.05 }); // +0.05: no change
    expect(sampler.currentThreshold).toBe(0.5);
    sampler.observe({ step: 3, validationLoss: 2.2 }); // +0.15: rise
    expect(sampler.currentThreshold).toBeCloseTo(0.6, 12);
    sampler.observe({ step: 4, validationLoss: 1.0 }); // falls: no change
    expect(sampler.currentThreshold).toBeCloseTo(0.6, 12);
  });

  it('keeps a FIFO replay buffer of student samples and trains on draws from it', async () => {
    const sampler = new DistillmSampler(models(), { ...options, initialThreshold: 1 });
    const first = await sampler.sample(batch, { step: 0, totalSteps: 1000 });
    expect(sampler.bufferLength).toBe(3);
    expect(first.sources).toEqual(['student-replay', 'student-replay', 'student-replay']);
    const second = await sampler.sample(batch, { step: 1, totalSteps: 1000 });
    expect(sampler.bufferLength).toBe(4); // capacity 4: the oldest two were evicted
    const state = sampler.getState() as { buffer: { prompt: number[] }[] };
    expect(state.buffer.map((x) => x.prompt)).toEqual([[4], [1], [2, 3], [4]]);
    [first, second].forEach((b) => b.dispose());
  });

  it('resumes from saved state with the same buffer, threshold and draws', async () => {
    const a = new DistillmSampler(models(2), { ...options, initialThreshold: 1 });
    await a.sample(batch, { step: 0, totalSteps: 1000 }).then((b) => b.dispose());
    a.observe({ step: 1, validationLoss: 1 });
    const state = JSON.parse(JSON.stringify(a.getState()));
    const b = new DistillmSampler(models(2), options);
    b.setState(state);
    expect(b.currentThreshold).toBe(1);
    expect(b.bufferLength).toBe(3);
    b.observe({ step: 2, validationLoss: 1.5 });
    expect(b.currentThreshold).toBe(1); // capped at 1, and the last loss (1) came from the saved state
  });
});

describe("switch (the authors' mixed_train)", () => {
  const entry = samplerEntries.find((e) => e.kind === 'switch');
  const deps = (seed: number) => ({ ...models(seed), baseDir: '.' });

  it('samples with `first` before round(at * steps) and with `then` from there, reporting which', async () => {
    const options = entry?.options.parse({ at: 0.5, first: { kind: 'supervised' }, then: { kind: 'on-policy', options: { maxNewTokens: 3 } } });
    const sampler = (await entry?.create(options, deps(4) as never)) as SwitchSampler;
    expect(sampler.switchStep(10)).toBe(5);
    const used: string[] = [];
    for (const step of [0, 4, 5, 9]) {
      const sampled = await sampler.sample(batch, { step, totalSteps: 10 });
      used.push(`${step}:${sampled.sources[0]}:${sampled.stats['switched']}`);
      sampled.dispose();
    }
    expect(used).toEqual(['0:reference:0', '4:reference:0', '5:student:1', '9:student:1']);
    // The same as the nested samplers on their own, from the same seed: the first half is supervised.
    const alone = await new SupervisedSampler({ pad: 0, contextLength: 64 }).sample(batch);
    const first = await sampler.sample(batch, { step: 0, totalSteps: 10 });
    expect(rowsOf(first)).toEqual(rowsOf(alone));
    [alone, first].forEach((b) => b.dispose());
  });

  it('checks each nested sampler as its own config would be, naming its place', () => {
    const bad = entry?.options.safeParse({ first: { kind: 'supervised' }, then: { kind: 'on-policy', options: { maxNewTokenz: 3 } } });
    expect(bad?.error?.issues.map((i) => i.path.join('.'))).toEqual(['then.options']);
    const unknown = entry?.options.safeParse({ first: { kind: 'nope' }, then: { kind: 'switch' } });
    expect(unknown?.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      expect.stringMatching(/^first\.kind: unknown sampler kind "nope"; one of supervised, .*mixed-skd$/),
      expect.stringMatching(/^then\.kind: unknown sampler kind "switch"/),
    ]);
    expect(entry?.options.safeParse({ at: 1.5, first: { kind: 'supervised' }, then: { kind: 'supervised' } }).success).toBe(false);
  });

  it("passes feedback and checkpoint state to both samplers (DistiLLM's buffer survives a resume)", async () => {
    const options = entry?.options.parse({ first: { kind: 'supervised' }, then: { kind: 'distillm', options: { maxNewTokens: 3, bufferSize: 4 } } });
    const a = (await entry?.create(options, deps(5) as never)) as SwitchSampler;
    for (const step of [5, 6]) (await a.sample(batch, { step, totalSteps: 10 })).dispose();
    a.observe({ step: 6, validationLoss: 2 });
    const state = a.getState();
    const b = (await entry?.create(options, deps(5) as never)) as SwitchSampler;
    b.setState(state);
    expect(b.getState()).toEqual(state);
    expect(JSON.stringify(state)).toContain('"then"');
  });
});

describe('registry entries', () => {
  it("register every method of the paper's comparison, each with a strict schema", () => {
    expect(samplerEntries.map((e) => e.kind)).toEqual(['supervised', 'seq-kd', 'on-policy', 'mixed', 'imit-kd', 'distillm', 'skd', 'mixed-skd', 'switch']);
    for (const entry of samplerEntries) expect(entry.options.safeParse({ noSuchOption: 1 }).success).toBe(false);
    const skd = samplerEntries.find((e) => e.kind === 'skd')?.options.parse({}) as Record<string, unknown>;
    expect(skd).toMatchObject({ topK: 25, draftBlock: 5, acceptance: 'top-k', acceptOn: 'raw', replace: 'resample', ratio: 1, kDecay: false });
    expect((samplerEntries.find((e) => e.kind === 'mixed-skd')?.options.parse({}) as { ratio: number }).ratio).toBe(0.5);
    expect(samplerEntries.find((e) => e.kind === 'skd')?.options.safeParse({ topK: 0 }).success).toBe(false);
  });

  it('leak nothing across samplers over repeated batches', async () => {
    const m = models();
    const samplers = [
      new OnPolicySampler(m, { maxNewTokens: 3, sampling: {} }),
      new SeqKdSampler(m, { maxNewTokens: 3, sampling: {}, cache: false }),
      new MixedSampler(m, { lambda: 0.5, offPolicy: 'reference', maxNewTokens: 3, studentSampling: {}, teacherSampling: {} }),
      new DistillmSampler(m, { ...{ initialThreshold: 0.5, thresholdStep: 0.1, lossRise: 0.1, bufferSize: 4, maxNewTokens: 3, sampling: {} } }),
    ];
    const leaked = await tensorsLeakedBy(async () => {
      for (let i = 0; i < 10; i++) for (const s of samplers) (await s.sample(batch, ctx)).dispose();
    });
    expect(leaked).toBe(0);
  });
});
