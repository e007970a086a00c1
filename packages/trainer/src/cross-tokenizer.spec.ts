import * as tf from '@tensorflow/tfjs-core';
import { Rng, encodePrompt, type Divergence, type RunEvent, type StepCompleted } from '@skd/core';
import { InlineDataset } from '@skd/datasets';
import { AlmDivergence, CrossEntropy, UldDivergence, uldResponseLoss, type UldOptions } from '@skd/divergences';
import { BpeTokenizer, ByteTokenizer, GptModel, generate, gptConfigSchema, tokenizerBridge } from '@skd/models';
import {
  MixedSampler,
  OnPolicySampler,
  SeqKdSampler,
  SkdSampler,
  SupervisedSampler,
  assembleBatch,
  mixedSamplerOptions,
  skdSamplerOptions,
} from '@skd/samplers';
import { tensorsLeakedBy, useBackend } from '@skd/testing';
import { alignedLoss, teacherBatch, teacherBatchLogits } from './cross-tokenizer';
import { Trainer, type TrainerRun, type TrainingOptions } from './trainer';

beforeAll(() => useBackend('cpu'));

const student = new ByteTokenizer();
const sums = ['2+2=4', '3+1=4', '1+1=2', '2+3=5', '4+4=8', '3+3=6', '12+1=13', '5+5=10'];
// A BPE trained apart: "+", "=" and digit pairs merge, so its tokens cover several of the student's bytes.
const teacherTokenizer = BpeTokenizer.train([...sums, ...sums.map((s) => `${s} ${s}`)], { vocabSize: 280, minFrequency: 1 });
const examples = sums.map((s, i) => ({ id: String(i), prompt: s.slice(0, s.indexOf('=') + 1), response: s.slice(s.indexOf('=') + 1) }));
const dataset = () => new InlineDataset('sums', { train: examples, eval: examples.slice(0, 2), test: examples.slice(0, 3) });
const gpt = (vocabSize: number, seed: number, layers = 1) =>
  new GptModel(gptConfigSchema.parse({ vocabSize, contextLength: 32, layers, heads: 2, dModel: 16 }), { seed });
const options: UldOptions = { studentTemperature: 1, teacherTemperature: 1, merge: 'observed' };

describe('the loss across tokenizers', () => {
  it("equals ULD computed row by row on each side's own unpadded sequence", () => {
    const [studentModel, teacher] = [gpt(student.vocabSize, 1), gpt(teacherTokenizer.vocabSize, 2)];
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const rows = [
      { prompt: encodePrompt(student, '12+1='), response: [...student.encode('13'), student.special.eos] },
      { prompt: encodePrompt(student, '3+3='), response: student.encode('6 and') }, // cut by the budget: no end token
    ];
    const batch = assembleBatch(rows, student.special.pad, 32);
    const view = teacherBatch(batch.tokens, batch.targetMask, bridge, teacher);
    const teacherLogits = teacherBatchLogits(teacher, view);
    const divergence = new UldDivergence('uld', { ...options, eos: 'keep' });
    const ours = alignedLoss({
      divergence,
      bridge,
      studentLogits: studentModel.logits(batch.tokens, { mask: batch.attentionMask }),
      teacherLogits,
      batch: view,
      normalizer: 2,
    });
    const expected = rows.map(({ prompt, response }) =>
      tf.tidy(() => {
        const bridged = bridge.teacherResponse(response);
        const teacherPrompt = bridge.teacherPrompt(prompt);
        const s = tf.squeeze(studentModel.logits(tf.tensor2d([[...prompt, ...response]], undefined, 'int32')), [0]) as tf.Tensor2D;
        const t = tf.squeeze(teacher.logits(tf.tensor2d([[...teacherPrompt, ...bridged.teacherTokens]], undefined, 'int32')), [0]) as tf.Tensor2D;
        const { loss } = uldResponseLoss(
          {
            studentLogits: tf.slice(s, [prompt.length - 1, 0], [response.length, -1]),
            teacherLogits: tf.slice(t, [teacherPrompt.length - 1, 0], [bridged.teacherTokens.length, -1]),
            studentTokens: response,
            teacherTokens: bridged.teacherTokens,
            studentSpans: bridged.studentSpans,
            teacherSpans: bridged.teacherSpans,
          },
          options,
        );
        return loss.dataSync()[0] as number;
      }),
    );
    expect(view.rows.map((r) => r.bridged.ended)).toEqual([true, false]);
    expect(ours.dataSync()[0]).toBeCloseTo(((expected[0] as number) + (expected[1] as number)) / 2, 5);
    expect(expected.every((v) => v > 1e-3)).toBe(true);
    tf.dispose([ours, teacherLogits as tf.Tensor, batch.tokens, batch.attentionMask, batch.targetMask]);
    view.dispose();
    studentModel.dispose();
    teacher.dispose();
  });
});

const training = (over: Partial<TrainingOptions> = {}): TrainingOptions => ({
  steps: 4,
  batchSize: 2,
  gradientAccumulation: 1,
  learningRate: 3e-3,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  schedule: 'constant',
  warmupSteps: 0,
  gradientClip: 1,
  evalEvery: 2,
  evalLimit: 2,
  maxNewTokens: 3,
  checkpointEvery: 0,
  ...over,
});

function parts(
  kind: 'supervised' | 'on-policy' | 'seq-kd' | 'mixed' | 'skd',
  divergence: Divergence,
  over: Partial<TrainingOptions> = {},
): TrainerRun & { dispose(): void } {
  const rng = Rng.create(5);
  const samplerRng = rng.fork('sampler');
  const studentModel = gpt(student.vocabSize, 1);
  const teacher = gpt(teacherTokenizer.vocabSize, 2, 2);
  const models = { student: studentModel, teacher, tokenizer: student, teacherTokenizer, rng: samplerRng };
  const sampler =
    kind === 'supervised'
      ? new SupervisedSampler({ pad: student.special.pad, contextLength: 32 })
      : kind === 'on-policy'
        ? new OnPolicySampler(models, { maxNewTokens: 3, sampling: {} })
        : kind === 'seq-kd'
          ? new SeqKdSampler(models, { maxNewTokens: 3, sampling: { greedy: true }, cache: false })
          : kind === 'mixed'
            ? new MixedSampler(models, mixedSamplerOptions({ lambda: 0.5, offPolicy: 'teacher', maxNewTokens: 3 }))
            : new SkdSampler(models, skdSamplerOptions({ topK: 100, maxNewTokens: 3, draftBlock: 2 }));
  return {
    student: studentModel,
    teacher,
    tokenizer: student,
    teacherTokenizer,
    sampler,
    divergence,
    dataset: dataset(),
    evaluators: [],
    componentRngs: new Map([['sampler', samplerRng]]),
    config: { training: training(over) },
    backend: { name: 'cpu' },
    dispose: () => [studentModel, teacher].forEach((m) => m.dispose()),
  };
}

async function losses(run: TrainerRun): Promise<{ steps: StepCompleted[]; validation: number[] }> {
  const trainer = new Trainer(run);
  const events: RunEvent[] = [];
  trainer.events$.subscribe((e) => events.push(e));
  await trainer.run();
  trainer.dispose();
  return {
    steps: events.filter((e): e is StepCompleted => e.type === 'step'),
    validation: events.flatMap((e) => (e.type === 'eval' && e.metrics['validationLoss'] !== undefined ? [e.metrics['validationLoss']] : [])),
  };
}

describe("a teacher's context", () => {
  it('cuts a response that passes it after the last byte-aligned group that fits, on both sides', () => {
    const teacher = new GptModel(gptConfigSchema.parse({ vocabSize: teacherTokenizer.vocabSize, contextLength: 12, layers: 1, heads: 2, dModel: 16 }), {
      seed: 3,
    });
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const rows = [
      { prompt: encodePrompt(student, '12+1='), response: [...student.encode('13 and 5+5=10 and 2+2=4'), student.special.eos] },
      { prompt: encodePrompt(student, '3+3='), response: [...student.encode('6'), student.special.eos] },
    ];
    const batch = assembleBatch(rows, student.special.pad, 64);
    const view = teacherBatch(batch.tokens, batch.targetMask, bridge, teacher);
    expect(view.clipped).toBe(1);
    const [long, short] = view.rows as [(typeof view.rows)[0], (typeof view.rows)[0]];
    const prompt = bridge.teacherPrompt(rows[0]?.prompt as number[]);
    expect(prompt.length + long.bridged.teacherTokens.length).toBeLessThanOrEqual(12);
    expect(long.bridged.ended).toBe(false);
    expect(long.studentTokens.length).toBeGreaterThan(0);
    // Both sides stop at the same byte: the same text.
    expect(student.decode(long.studentTokens)).toBe(teacherTokenizer.decode(long.bridged.teacherTokens));
    expect(short.bridged.ended).toBe(true);
    const logits = teacherBatchLogits(teacher, view);
    expect(logits?.shape.slice(0, 2)).toEqual([2, view.tokens.shape[1]]);
    tf.dispose([logits as tf.Tensor, batch.tokens, batch.attentionMask, batch.targetMask]);
    view.dispose();
    teacher.dispose();
  });
});

describe('sampling across tokenizers', () => {
  it("SeqKD trains on the teacher's own generation, carried back to the student's tokens as text", async () => {
    const run = parts('seq-kd', new UldDivergence('uld', options));
    const teacher = run.teacher as GptModel;
    const prompts = [encodePrompt(student, '12+1='), encodePrompt(student, '3+3=')];
    const batch = await run.sampler.sample({ prompts, references: [[], []], ids: ['a', 'b'] }, { step: 0, totalSteps: 1 });
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const theirs = await generate(
      teacher,
      prompts.map((p) => bridge.teacherPrompt(p)),
      { greedy: true, maxNewTokens: 3, eos: teacherTokenizer.special.eos, pad: teacherTokenizer.special.pad, rng: Rng.create(0) },
    );
    const tokens = batch.tokens.arraySync();
    const mask = batch.targetMask.arraySync();
    prompts.forEach((prompt, b) => {
      const response = (tokens[b] as number[]).filter((_, t) => (mask[b] as number[])[t] === 1);
      expect(student.decode(response)).toBe(teacherTokenizer.decode(theirs.tokens[b] as number[]));
      expect((tokens[b] as number[]).slice(0, prompt.length)).toEqual(prompt);
    });
    batch.dispose();
    run.dispose();
  });
});

describe('training across tokenizers', () => {
  it.each([
    ['supervised', 'uld', new UldDivergence('uld', options)],
    ['on-policy', 'gold', new UldDivergence('gold', { ...options, hybrid: { beta: 0.5 } })],
    ['seq-kd', 'uld with cross-entropy', new UldDivergence('uld', { ...options, crossEntropyWeight: 0.5 })],
    ['mixed', 'uld (the teacher generating half the batches)', new UldDivergence('uld', { ...options, merge: 'bayesian' })],
    ['skd', 'gold', new UldDivergence('gold', { ...options, hybrid: { beta: 0.1 } })],
    ['on-policy', 'alm', new AlmDivergence({ eos: 'keep' })],
    ['skd', 'alm with cross-entropy', new AlmDivergence({ eos: 'skip', crossEntropyWeight: 0.5 })],
  ] as const)('%s sampling with %s: the same losses run to run, a validation loss, no tensor left behind', async (kind, _name, divergence) => {
    const run = parts(kind, divergence);
    const before = tf.memory().numTensors;
    const first = await losses(run);
    expect(tf.memory().numTensors).toBe(before);
    run.dispose();
    expect(first.steps).toHaveLength(4);
    expect(first.steps.every((s) => Number.isFinite(s.loss) && s.loss > 0 && s.gradNorm > 0)).toBe(true);
    expect(first.validation.length).toBeGreaterThan(0);
    const again = parts(kind, divergence);
    const second = await losses(again);
    again.dispose();
    expect(second.steps.map((s) => s.loss)).toEqual(first.steps.map((s) => s.loss));
  });

  it('trains by cross-entropy beside a teacher with its own tokenizer, and its final evaluation leaves out the teacher acceptance', async () => {
    const run = parts('supervised', new CrossEntropy(), { steps: 2, evalEvery: 0 });
    const trainer = new Trainer(run);
    const result = await trainer.run();
    trainer.dispose();
    run.dispose();
    expect(result.finalMetrics['perplexity']).toBeGreaterThan(1);
    expect(result.finalMetrics['teacherAcceptance']).toBeUndefined();
  });

  it('splits a step over micro-batches to the same loss', async () => {
    const divergence = new UldDivergence('uld', options);
    const whole = parts('supervised', divergence, { steps: 1, batchSize: 4, evalEvery: 0 });
    const split = parts('supervised', divergence, { steps: 1, batchSize: 2, gradientAccumulation: 2, evalEvery: 0 });
    const [a, b] = [await losses(whole), await losses(split)];
    [whole, split].forEach((r) => r.dispose());
    expect(b.steps[0]?.loss).toBeCloseTo(a.steps[0]?.loss as number, 5);
    expect(b.steps[0]?.gradNorm).toBeCloseTo(a.steps[0]?.gradNorm as number, 4);
  });

  it('refuses a divergence over shared token ids and the chunked loss, naming the settings', () => {
    const run = parts('supervised', new UldDivergence('uld', options), { lossChunk: 4 });
    expect(() => new Trainer(run)).toThrow(/training.lossChunk/);
    const forward = {
      ...run,
      divergence: { name: 'forward-kl', needsTeacher: true, perToken: () => tf.zeros([1, 1]) as tf.Tensor2D },
      config: { training: training() },
    };
    expect(() => new Trainer(forward)).toThrow(/divergence.kind.*uld, gold or alm/s);
    run.dispose();
  });

  it('leaks nothing over a step', async () => {
    const run = parts('on-policy', new UldDivergence('gold', { ...options, hybrid: { beta: 0 } }), { steps: 2, evalEvery: 0 });
    expect(await tensorsLeakedBy(() => losses(run))).toBe(0);
    run.dispose();
  });
});
