import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, type Divergence, type RunEvent, type StepCompleted, type StepPhases } from '@skd/core';
import { InlineDataset } from '@skd/datasets';
import { CrossEntropy, TaidDivergence, TokenDivergence, forwardKl } from '@skd/divergences';
import { ExactMatch } from '@skd/evaluators';
import { BigramModel, ByteTokenizer, GptModel, gptConfigSchema } from '@skd/models';
import { SkdSampler, SupervisedSampler } from '@skd/samplers';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { AdamW, clipByGlobalNorm, learningRateAt } from './optimizer';
import { checkTrainingData } from './data-stream';
import { DivergedError, Trainer, latestCheckpoint, type TrainerRun, type TrainingOptions } from './trainer';

beforeAll(() => useBackend('cpu'));

const tokenizer = new ByteTokenizer();
const examples = ['2+2=4', '3+1=4', '1+1=2', '2+3=5', '4+4=8', '3+3=6'].map((s, i) => ({ id: String(i), prompt: s.slice(0, 4), response: s.slice(4) }));
const dataset = () => new InlineDataset('toy', { train: examples, eval: examples.slice(0, 2), test: examples.slice(0, 3) });
const gpt = (seed: number, layers = 1) =>
  new GptModel(gptConfigSchema.parse({ vocabSize: tokenizer.vocabSize, contextLength: 32, layers, heads: 2, dModel: 16 }), { seed });

const training = (over: Partial<TrainingOptions> = {}): TrainingOptions => ({
  steps: 6,
  batchSize: 2,
  gradientAccumulation: 1,
  learningRate: 3e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  schedule: 'linear',
  warmupSteps: 1,
  gradientClip: 1,
  evalEvery: 0,
  evalLimit: 2,
  maxNewTokens: 3,
  checkpointEvery: 0,
  ...over,
});

/** An SKD distillation run (stochastic: it exercises RNG and sampler state on resume). */
function skdParts(
  over: Partial<TrainingOptions> = {},
  seed = 1,
  cacheTeacherLogProbs = true,
  divergence: Divergence = new TokenDivergence({ name: 'forward-kl', fn: forwardKl }),
): TrainerRun & { dispose(): void } {
  const rng = Rng.create(seed);
  const samplerRng = rng.fork('sampler');
  const student = gpt(seed);
  const teacher = gpt(seed + 100, 2);
  const sampler = new SkdSampler(
    { student, teacher, tokenizer, rng: samplerRng },
    {
      topK: 20,
      acceptance: 'top-k',
      topP: 0.9,
      acceptOn: 'raw',
      replace: 'resample',
      acceptTest: 'draft',
      draftBlock: 3,
      kDecay: false,
      kDecayUnit: 'steps',
      ratio: 1,
      maxNewTokens: 4,
      studentSampling: {},
      teacherSampling: {},
      cacheTeacherLogProbs,
      maxCachedTeacherFloats: 1e9,
    },
  );
  return {
    student,
    teacher,
    tokenizer,
    sampler,
    divergence,
    dataset: dataset(),
    evaluators: [new ExactMatch()],
    componentRngs: new Map([['sampler', samplerRng]]),
    config: { training: training(over) },
    backend: { name: 'cpu' },
    dispose: () => [student, teacher].forEach((m) => m.dispose()),
  };
}

function sftParts(over: Partial<TrainingOptions> = {}, divergence: Divergence = new CrossEntropy()): TrainerRun & { dispose(): void } {
  const student = gpt(3);
  return {
    student,
    teacher: undefined,
    tokenizer,
    sampler: new SupervisedSampler({ pad: tokenizer.special.pad, contextLength: 32 }),
    divergence,
    dataset: dataset(),
    evaluators: [new ExactMatch()],
    componentRngs: new Map(),
    config: { training: training(over) },
    backend: { name: 'cpu' },
    dispose: () => student.dispose(),
  };
}

const weights = (model: GptModel) => model.trainableVariables.map((v) => Array.from(v.dataSync()));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-train-'));

describe('Trainer', () => {
  it('fine-tunes (supervised sampler + cross-entropy): the loss falls, events carry plain numbers', async () => {
    const parts = sftParts({ steps: 40, learningRate: 1e-2 });
    const trainer = new Trainer(parts);
    const events: RunEvent[] = [];
    trainer.events$.subscribe((e) => events.push(e));
    const result = await trainer.run();
    const losses = events.flatMap((e) => (e.type === 'step' ? [e.loss] : []));
    expect(result.reason).toBe('completed');
    expect(losses).toHaveLength(40);
    expect(losses.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan((losses.slice(0, 5).reduce((a, b) => a + b) / 5) * 0.6);
    expect(events[0]?.type).toBe('run-started');
    expect(events.at(-1)).toEqual({ type: 'run-ended', step: 40, reason: 'completed' });
    const test = events.find((e) => e.type === 'eval' && e.split === 'test');
    expect(test).toMatchObject({ metrics: { exactMatch: expect.any(Number), validationLoss: expect.any(Number), perplexity: expect.any(Number) } });
    expect(test?.type === 'eval' && test.metrics['perplexity']).toBeLessThan(50); // a byte model that learned the data
    expect(JSON.parse(JSON.stringify(events))).toEqual(events); // plain data only
    trainer.dispose();
    parts.dispose();
  });

  it("times each step's phases: the sampler, the teacher's loss pass (none when the sampler kept its distributions), the student, the update", async () => {
    const phasesOf = async (cache: boolean) => {
      const parts = skdParts({ steps: 3, evalLimit: 1, testLimit: 1 }, 1, cache);
      const trainer = new Trainer(parts);
      const steps: StepCompleted[] = [];
      trainer.events$.subscribe((e) => e.type === 'step' && steps.push(e));
      await trainer.run();
      trainer.dispose();
      parts.dispose();
      return steps;
    };
    for (const cache of [true, false]) {
      for (const step of await phasesOf(cache)) {
        const { sample, teacher, student, update } = step.phases as StepPhases;
        expect(Math.min(sample, student, update)).toBeGreaterThan(0);
        if (cache) expect(teacher).toBe(0);
        else expect(teacher).toBeGreaterThan(0);
        expect(sample + teacher + student + update).toBeLessThanOrEqual(step.seconds + 0.002); // Date.now() has millisecond steps
      }
    }
  });

  it('measures the validation loss in micro-batches, equal to one batch over the whole set', async () => {
    // Learning rate 0: the weights stay as built, so only the evaluation's batching differs.
    const loss = async (batchSize: number) => {
      const parts = skdParts({ steps: 1, learningRate: 0, warmupSteps: 0, batchSize, evalLimit: 3 });
      const trainer = new Trainer(parts);
      const events: RunEvent[] = [];
      trainer.events$.subscribe((e) => events.push(e));
      await trainer.run();
      trainer.dispose();
      parts.dispose();
      const test = events.find((e) => e.type === 'eval' && e.split === 'test');
      return test?.type === 'eval' ? (test.metrics['validationLoss'] as number) : NaN;
    };
    const whole = await loss(3);
    expect(whole).toBeGreaterThan(0);
    expect(await loss(1)).toBeCloseTo(whole, 5);
    expect(await loss(2)).toBeCloseTo(whole, 5);
  });

  it('with checkpointLayers trains to the same losses and weights (blocks run again in the backward); a student without it is refused', async () => {
    const train = async (checkpointLayers: boolean) => {
      const parts = skdParts({ steps: 3, checkpointLayers });
      const logits = jest.spyOn(parts.student as GptModel, 'logits');
      const trainer = new Trainer(parts);
      const losses: number[] = [];
      trainer.events$.subscribe((e) => e.type === 'step' && losses.push(e.loss));
      await trainer.run();
      // the option reaches the student's forward pass at every step
      expect(logits.mock.calls.filter(([, options]) => options?.checkpointLayers === true)).toHaveLength(checkpointLayers ? 3 : 0);
      const w = weights(parts.student as GptModel);
      trainer.dispose();
      parts.dispose();
      return { losses, w };
    };
    const plain = await train(false);
    const checkpointed = await train(true);
    checkpointed.losses.forEach((l, i) => expect(l).toBeCloseTo(plain.losses[i] as number, 5));
    checkpointed.w.forEach((w, i) => expect(maxAbsDiff(w, plain.w[i] as number[])).toBeLessThan(1e-5));
    const bigram = { ...sftParts({ checkpointLayers: true }), student: BigramModel.fromProbabilities([[1]]) };
    expect(() => new Trainer(bigram)).toThrow('training.checkpointLayers: this student model does not checkpoint its blocks');
    bigram.student.dispose();
    bigram.dispose();
  });

  it('with lossChunk takes the vocabulary loss a few positions at a time: the same losses and weights; a student without its output layer apart is refused', async () => {
    const train = async (lossChunk: number) => {
      const parts = skdParts({ steps: 3, lossChunk, lossReduction: 'sequences' });
      const features = jest.spyOn(parts.student as GptModel, 'features');
      const trainer = new Trainer(parts);
      const losses: number[] = [];
      trainer.events$.subscribe((e) => e.type === 'step' && losses.push(e.loss));
      await trainer.run();
      expect(features).toHaveBeenCalledTimes(lossChunk > 0 ? 3 : 0); // the chunked path ran, once a step
      const w = weights(parts.student as GptModel);
      trainer.dispose();
      parts.dispose();
      return { losses, w };
    };
    const whole = await train(0);
    const chunked = await train(3);
    chunked.losses.forEach((l, i) => expect(l).toBeCloseTo(whole.losses[i] as number, 5));
    chunked.w.forEach((w, i) => expect(maxAbsDiff(w, whole.w[i] as number[])).toBeLessThan(1e-5));
    const bigram = { ...sftParts({ lossChunk: 4 }), student: BigramModel.fromProbabilities([[1]]) };
    expect(() => new Trainer(bigram)).toThrow('training.lossChunk: this student model does not expose its output layer apart');
    bigram.student.dispose();
    bigram.dispose();
  });

  it('skips training examples longer than the context with onTooLong "skip", and stops on them by default', async () => {
    const long = { id: 'long', prompt: 'x'.repeat(40), response: '1' }; // 40 prompt bytes: over the context of 32
    const withLong = () => new InlineDataset('mixed', { train: [...examples.slice(0, 3), long, ...examples.slice(3)], eval: [], test: examples.slice(0, 2) });
    const skipping = { ...sftParts({ steps: 4, onTooLong: 'skip' }), dataset: withLong() };
    const result = await new Trainer(skipping).run();
    expect(result.reason).toBe('completed');
    skipping.dispose();
    const failing = { ...sftParts({ steps: 4 }), dataset: withLong() };
    await expect(new Trainer(failing).run()).rejects.toThrow('more than the context of 32');
    failing.dispose();
  });

  it('resumes an interrupted SKD run to exactly the weights of an uninterrupted one', async () => {
    const straight = skdParts({ steps: 6 });
    const a = new Trainer(straight);
    const finalMetrics = (await a.run({ runDir: tmp() })).finalMetrics;
    expect(finalMetrics['teacherAcceptance']).toBeGreaterThanOrEqual(0); // reported with a teacher
    expect(finalMetrics['teacherAcceptance']).toBeLessThanOrEqual(1);
    const dir = tmp();
    const first = skdParts({ steps: 6, checkpointEvery: 3 });
    const b = new Trainer(first);
    const controller = new AbortController();
    b.events$.subscribe((e) => e.type === 'step' && e.step === 3 && controller.abort());
    expect((await b.run({ runDir: dir, signal: controller.signal })).reason).toBe('cancelled');
    expect(latestCheckpoint(dir)).toMatch(/step-000003$/);
    const second = skdParts({ steps: 6, checkpointEvery: 3 });
    const c = new Trainer(second);
    const started: RunEvent[] = [];
    c.events$.subscribe((e) => e.type === 'run-started' && started.push(e));
    await c.run({ runDir: dir, resume: true });
    expect(started[0]).toMatchObject({ startStep: 3 });
    expect(weights(second.student as GptModel)).toEqual(weights(straight.student as GptModel));
    [a, b, c].forEach((t) => t.dispose());
    [straight, first, second].forEach((p) => p.dispose());
  });

  it('a divergence with a schedule (TAID): its t is in every step event, rises, and a resumed run continues it to the same weights', async () => {
    const taid = () => new TaidDivergence({ tEnd: 0.9, alpha: 0.5, beta: 0.5 });
    const ts = (trainer: Trainer) => {
      const seen: number[] = [];
      trainer.events$.subscribe((e) => e.type === 'step' && seen.push((e.divergence as Record<string, number>)['t'] as number));
      return seen;
    };
    const straight = skdParts({ steps: 6 }, 1, true, taid());
    const a = new Trainer(straight);
    const straightTs = ts(a);
    await a.run({ runDir: tmp() });
    expect(straightTs).toHaveLength(6);
    expect(straightTs[0]).toBe(0.4);
    straightTs.slice(1).forEach((t, i) => expect(t).toBeGreaterThanOrEqual(straightTs[i] as number));
    expect(straightTs[5]).toBeGreaterThan(0.4 + (0.5 * 4) / 6); // above the floor's value at step 5: the adaptive rise acted
    const dir = tmp();
    const first = skdParts({ steps: 6, checkpointEvery: 3 }, 1, true, taid());
    const b = new Trainer(first);
    const controller = new AbortController();
    b.events$.subscribe((e) => e.type === 'step' && e.step === 3 && controller.abort());
    await b.run({ runDir: dir, signal: controller.signal });
    const second = skdParts({ steps: 6, checkpointEvery: 3 }, 1, true, taid());
    const c = new Trainer(second);
    const resumedTs = ts(c);
    await c.run({ runDir: dir, resume: true });
    expect(resumedTs).toEqual(straightTs.slice(3));
    expect(weights(second.student as GptModel)).toEqual(weights(straight.student as GptModel));
    [a, b, c].forEach((t) => t.dispose());
    [straight, first, second].forEach((p) => p.dispose());
  });

  it('on resume skips a corrupt newest checkpoint for the newest that verifies, and clears unfinished writes', async () => {
    const dir = tmp();
    const first = sftParts({ steps: 4, checkpointEvery: 2 });
    const a = new Trainer(first);
    await a.run({ runDir: dir });
    const newest = path.join(dir, 'checkpoints', 'step-000004', 'state.safetensors');
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01; // one flipped bit in the tensor data
    fs.writeFileSync(newest, bytes);
    fs.mkdirSync(path.join(dir, 'checkpoints', 'step-000006.partial-4242'));
    const second = sftParts({ steps: 4, checkpointEvery: 2 });
    const b = new Trainer(second);
    const events: RunEvent[] = [];
    b.events$.subscribe((e) => events.push(e));
    await b.run({ runDir: dir, resume: true });
    const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
    expect(warnings[0]).toBe('removed 1 unfinished checkpoint folder(s) left by an interrupted write');
    expect(warnings[1]).toMatch(/^checkpoint step-000004 cannot be used \(.*state\.safetensors: checksum mismatch.*\); trying the one before$/);
    expect(events.find((e) => e.type === 'run-started')).toMatchObject({ startStep: 2 });
    expect(weights(second.student as GptModel)).toEqual(weights(first.student as GptModel)); // steps 3-4 trained again, identically
    expect(fs.readdirSync(path.join(dir, 'checkpoints')).sort()).toEqual(['step-000002', 'step-000004', expect.stringMatching(/^step-000004\.unusable-\d+$/)]);
    fs.rmSync(path.join(dir, 'checkpoints', 'step-000002', 'state.json'));
    fs.writeFileSync(newest, 'torn');
    const third = sftParts({ steps: 4 });
    const c = new Trainer(third);
    await expect(c.run({ runDir: dir, resume: true })).rejects.toThrow(/no checkpoint of .* verifies/);
    [a, b, c].forEach((t) => t.dispose());
    [first, second, third].forEach((p) => p.dispose());
  });

  it("accumulates gradients: 2 micro-batches of 1 step like 1 batch of 2 (normalised by the step's tokens)", async () => {
    const one = sftParts({ steps: 2, batchSize: 2, gradientAccumulation: 1, gradientClip: 0 });
    const two = sftParts({ steps: 2, batchSize: 1, gradientAccumulation: 2, gradientClip: 0 });
    for (const parts of [one, two]) {
      const t = new Trainer(parts);
      await t.run();
      t.dispose();
    }
    const a = weights(one.student as GptModel).flat();
    const b = weights(two.student as GptModel).flat();
    expect(Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number))))).toBeLessThan(1e-5);
    [one, two].forEach((p) => p.dispose());
  });

  it('lossReduction sequences: each response counts once, micro-batches sum to the full batch, and it trains other weights than tokens', async () => {
    // Responses of 1 and 4 characters (2 and 5 targets with EOS): the reductions weigh them differently.
    const uneven = ['2+2=4', '9*9=81 x', '1+1=2', '7*7=49 y'].map((t, i) => ({ id: String(i), prompt: t.slice(0, 4), response: t.slice(4) }));
    const withUneven = (over: Partial<TrainingOptions>) => ({
      ...sftParts(over),
      dataset: new InlineDataset('uneven', { train: uneven, eval: uneven.slice(0, 2), test: uneven.slice(0, 2) }),
    });
    const runs = [
      withUneven({ steps: 2, batchSize: 2, gradientAccumulation: 1, gradientClip: 0, lossReduction: 'sequences' }),
      withUneven({ steps: 2, batchSize: 1, gradientAccumulation: 2, gradientClip: 0, lossReduction: 'sequences' }),
      withUneven({ steps: 2, batchSize: 2, gradientAccumulation: 1, gradientClip: 0, lossReduction: 'tokens' }),
    ];
    for (const parts of runs) {
      const t = new Trainer(parts);
      await t.run();
      t.dispose();
    }
    const [bySequence, accumulated, byToken] = runs.map((p) => weights(p.student as GptModel).flat());
    const gap = (x: number[], y: number[]) => Math.max(...x.map((v, i) => Math.abs(v - (y[i] as number))));
    expect(gap(bySequence as number[], accumulated as number[])).toBeLessThan(1e-5);
    expect(gap(bySequence as number[], byToken as number[])).toBeGreaterThan(1e-5); // responses of different lengths
    runs.forEach((p) => p.dispose());
  });

  it('stops on a NaN loss with a clear message and keeps the last good checkpoint', async () => {
    let calls = 0;
    const flaky: Divergence = {
      name: 'flaky',
      needsTeacher: false,
      perToken: (input) => {
        calls += 1;
        const ce = new CrossEntropy().perToken(input);
        return calls > 2 ? (tf.mul(ce, Number.NaN) as tf.Tensor2D) : ce; // NaN from step 2 on, still connected to the weights
      },
    };
    const parts = sftParts({ steps: 5, checkpointEvery: 1 }, flaky);
    const trainer = new Trainer(parts);
    const dir = tmp();
    const ended: RunEvent[] = [];
    trainer.events$.subscribe((e) => e.type === 'run-ended' && ended.push(e));
    await expect(trainer.run({ runDir: dir })).rejects.toThrow(DivergedError);
    expect(ended[0]).toMatchObject({ reason: 'diverged', message: 'loss became NaN at step 2' });
    expect(latestCheckpoint(dir)).toMatch(/step-000002$/);
    trainer.dispose();
    parts.dispose();
  });

  it('stops early when signalled, evaluates on the test split, and ends "early-stopped"', async () => {
    const parts = sftParts({ steps: 20, evalEvery: 2 });
    const trainer = new Trainer(parts);
    const early = new AbortController();
    const events: RunEvent[] = [];
    trainer.events$.subscribe((e) => events.push(e));
    trainer.events$.subscribe((e) => e.type === 'eval' && e.step === 4 && early.abort());
    const result = await trainer.run({ earlyStop: early.signal });
    expect(result).toMatchObject({ step: 4, reason: 'early-stopped', finalMetrics: { exactMatch: expect.any(Number) } });
    expect(events.at(-1)).toEqual({ type: 'run-ended', step: 4, reason: 'early-stopped' });
    trainer.dispose();
    parts.dispose();
  });

  it('refuses a teacher divergence without a teacher, before training', () => {
    const parts = sftParts({}, new TokenDivergence({ name: 'forward-kl', fn: forwardKl }));
    expect(() => new Trainer(parts)).toThrow('divergence "forward-kl" needs a teacher model');
    parts.dispose();
  });

  it('keeps numTensors flat across training steps', async () => {
    const parts = skdParts({ steps: 3 });
    const trainer = new Trainer(parts);
    await trainer.run();
    const leaked = await tensorsLeakedBy(async () => {
      const more = new Trainer({ ...parts, config: { training: training({ steps: 8 }) } });
      await more.run();
      more.dispose();
    });
    expect(leaked).toBe(0);
    trainer.dispose();
    parts.dispose();
  });
});

describe('checkTrainingData', () => {
  it('counts the training examples, and fails on an empty split or one that does not fit the context', async () => {
    const read = await checkTrainingData(dataset(), { tokenizer, contextLength: 32 });
    expect(read).toMatchObject({ examples: 6, tooLong: 0 });
    // The longest example is the context it needs: one token less and it no longer fits.
    expect(read.longestPrompt).toBeGreaterThan(0);
    expect(read.longestExample).toBeGreaterThan(read.longestPrompt);
    expect(await checkTrainingData(dataset(), { tokenizer, contextLength: read.longestExample })).toMatchObject({ tooLong: 0 });
    await expect(checkTrainingData(dataset(), { tokenizer, contextLength: read.longestExample - 1 })).rejects.toThrow(
      `more than the context of ${read.longestExample - 1}`,
    );
    await expect(checkTrainingData(dataset(), { tokenizer, contextLength: 6 })).rejects.toThrow('more than the context of 6');
    await expect(checkTrainingData(dataset(), { tokenizer, contextLength: 2, onTooLong: 'skip' })).rejects.toThrow('all 6 are longer than the context of 2');
    // BOS + 4 prompt bytes + response + EOS: the one-byte responses fit 7, the two-byte "10" does not.
    const mixed = new InlineDataset('mixed', { train: [...examples, { id: 'long', prompt: '5+5=', response: '10' }], eval: [], test: [] });
    expect(await checkTrainingData(mixed, { tokenizer, contextLength: 7, onTooLong: 'skip' })).toMatchObject({ examples: 6, tooLong: 1 });
    const empty = new InlineDataset('empty', { train: [], eval: [], test: [] });
    await expect(checkTrainingData(empty, { tokenizer, contextLength: 32 })).rejects.toThrow('the train split of dataset "empty" is empty');
  });
});

describe('optimizer pieces', () => {
  it('schedules: linear warmup, then constant, linear or cosine decay to 0', () => {
    const o = (schedule: 'constant' | 'linear' | 'cosine') => ({ learningRate: 1, warmupSteps: 2, schedule });
    expect([0, 1, 2, 6, 10].map((s) => learningRateAt(s, 10, o('linear')))).toEqual([0.5, 1, 1, 0.5, 0]);
    expect(learningRateAt(6, 10, o('cosine'))).toBeCloseTo(0.5, 12);
    expect(learningRateAt(9, 10, o('constant'))).toBe(1);
  });

  it('AdamW takes the bias-corrected Adam step by hand, with decoupled decay on matrices only', () => {
    const matrix = tf.variable(tf.tensor2d([[1, -2]]));
    const vector = tf.variable(tf.tensor1d([3]));
    const opts = { learningRate: 0.1, weightDecay: 0.5, beta1: 0.8, beta2: 0.9, epsilon: 1e-3 };
    const adam = new AdamW([matrix, vector], opts);
    const g = [tf.tensor2d([[0.2, -0.4]]), tf.tensor1d([1])];
    adam.apply(g, 0.1);
    // step 1: m = (1-b1) g, v = (1-b2) g^2, mhat = g, vhat = g^2: update = g / (|g| + eps)
    const step = (p: number, grad: number, decay: boolean) => (decay ? p * (1 - 0.1 * 0.5) : p) - 0.1 * (grad / (Math.abs(grad) + 1e-3));
    expect(Array.from(matrix.dataSync())).toEqual([step(1, 0.2, true), step(-2, -0.4, true)].map((x) => expect.closeTo(x, 6)));
    expect(vector.dataSync()[0]).toBeCloseTo(step(3, 1, false), 6); // rank 1: no decay
    adam.apply(g, 0.1);
    // step 2 with the same gradient: m / (1 - b1^2) = g again, so the same-sized step follows
    expect(vector.dataSync()[0]).toBeCloseTo(step(step(3, 1, false), 1, false), 5);
    const noDecay = tf.variable(tf.tensor2d([[1, -2]]));
    const plain = new AdamW([noDecay], { ...opts, weightDecay: 0 });
    plain.apply([g[0] as tf.Tensor], 0.1);
    expect(noDecay.dataSync()[0]).toBeCloseTo(step(1, 0.2, false), 6);
    [adam, plain].forEach((a) => a.dispose());
    tf.dispose([matrix, vector, noDecay, ...g]);
  });

  it('clips by the global norm and reports the norm before clipping', async () => {
    const { grads, norm } = await clipByGlobalNorm([tf.tensor1d([3]), tf.tensor1d([4])], 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(grads.map((g) => g.dataSync()[0])).toEqual([expect.closeTo(0.6, 5), expect.closeTo(0.8, 5)]);
    grads.forEach((g) => g.dispose());
  });
});
