import type { Dataset, Example } from '@skd/core';
import { BigramModel, ByteTokenizer, GptModel, gptConfigSchema } from '@skd/models';
import { useBackend, tensorsLeakedBy } from '@skd/testing';
import { ExactMatch } from './exact-match';
import { evaluateModel, judgeOutputs, referencePerplexity, teacherAcceptance } from './model-evaluation';

beforeAll(() => useBackend('cpu'));

const tokenizer = new ByteTokenizer();
const V = tokenizer.vocabSize;
const dataset = (examples: Example[]): Dataset => ({
  name: 'toy',
  size: examples.length,
  async *[Symbol.asyncIterator]() {
    yield* examples;
  },
});

/** A bigram that always continues "a" -> "b" -> EOS, with the given probability of the likely token. */
function chain(confidence: number): BigramModel {
  const rows = Array.from({ length: V }, (_, from) => {
    const next = from === 97 ? 98 : tokenizer.special.eos;
    return Array.from({ length: V }, (_, to) => (to === next ? confidence : (1 - confidence) / (V - 1)));
  });
  return BigramModel.fromProbabilities(rows, 32);
}

describe('model evaluation', () => {
  it('generates greedily in batches and scores every evaluator on the same outputs', async () => {
    const model = chain(0.9);
    const examples = [
      { id: '1', prompt: 'a', response: 'b' },
      { id: '2', prompt: 'xa', response: 'b' },
      { id: '3', prompt: 'b', response: 'c' },
    ];
    const progress: number[] = [];
    const { metrics, predictions } = await evaluateModel({
      model,
      tokenizer,
      dataset: dataset(examples),
      evaluators: [new ExactMatch()],
      batchSize: 2,
      maxNewTokens: 5,
      onProgress: (done) => progress.push(done),
    });
    expect(predictions.map((p) => p.text)).toEqual(['b', 'b', '']);
    expect(metrics).toEqual({ exactMatch: 2 / 3, count: 3 });
    expect(progress).toEqual([2, 3]);
    model.dispose();
  });

  it("cuts each output before the dataset's first stop string, in the scored text and the kept ids", async () => {
    // "a" -> "b" -> newline -> "c" -> "c" ...: the line after the answer is what a stop string removes.
    const next: Record<number, number> = { 97: 98, 98: 10, 10: 99, 99: 99 };
    const model = BigramModel.fromProbabilities(
      Array.from({ length: V }, (_, from) => Array.from({ length: V }, (_, to) => (to === (next[from] ?? 99) ? 0.99 : 0.01 / (V - 1)))),
      32,
    );
    const examples = [{ id: '1', prompt: 'a', response: 'b' }];
    const plain = await evaluateModel({ model, tokenizer, dataset: dataset(examples), evaluators: [new ExactMatch()], batchSize: 1, maxNewTokens: 5 });
    expect(plain.predictions[0]?.text).toBe('b\nccc');
    expect(plain.metrics['exactMatch']).toBe(0);
    const decode = jest.spyOn(model, 'decode');
    const stopped = await evaluateModel({
      model,
      tokenizer,
      dataset: { ...dataset(examples), stopStrings: ['\n', 'zz'] },
      evaluators: [new ExactMatch()],
      batchSize: 1,
      maxNewTokens: 5,
    });
    expect(stopped.predictions[0]?.text).toBe('b');
    expect(stopped.outputs[0]?.tokens).toEqual([98, tokenizer.special.eos]);
    expect(stopped.metrics['exactMatch']).toBe(1);
    expect(decode).toHaveBeenCalledTimes(2); // the prompt, then "b": the newline ended generation (not "ccc" too)
    model.dispose();
  });

  it('computes reference perplexity exactly (known distributions)', async () => {
    const model = chain(0.5);
    // reference "b" + EOS after prompt BOS "a": P(b | a) = 0.5, P(EOS | b) = 0.5 -> perplexity 2
    const metrics = await referencePerplexity(model, tokenizer, dataset([{ id: '1', prompt: 'a', response: 'b' }]));
    expect(metrics['referenceTokens']).toBe(2);
    expect(metrics['perplexity']).toBeCloseTo(2, 5);
    model.dispose();
  });

  it("measures how often the teacher ranks the student's greedy tokens in its top-K", async () => {
    const student = chain(0.9);
    const agreeing = chain(0.6);
    const disagreeing = BigramModel.fromProbabilities(
      Array.from({ length: V }, (_, from) => Array.from({ length: V }, (_, to) => (to === (from + 7) % V ? 0.9 : 0.1 / (V - 1)))),
      32,
    );
    const data = dataset([{ id: '1', prompt: 'a', response: 'b' }]);
    expect(await teacherAcceptance(agreeing, student, tokenizer, data, { topK: 1, maxNewTokens: 4 })).toEqual({ teacherAcceptance: 1, judgedTokens: 2 });
    expect(await teacherAcceptance(disagreeing, student, tokenizer, data, { topK: 1, maxNewTokens: 4 })).toEqual({ teacherAcceptance: 0, judgedTokens: 2 });
    expect((await teacherAcceptance(disagreeing, student, tokenizer, data, { topK: V, maxNewTokens: 4 }))['teacherAcceptance']).toBe(1);
    const leaked = await tensorsLeakedBy(() => teacherAcceptance(agreeing, student, tokenizer, data, { topK: 3, maxNewTokens: 4 }));
    expect(leaked).toBe(0);
    [student, agreeing, disagreeing].forEach((m) => m.dispose());
  });

  it('judges outputs of different lengths in one padded batch as it judges them one by one', async () => {
    const teacher = new GptModel(gptConfigSchema.parse({ vocabSize: 23, contextLength: 32, dModel: 16, heads: 2, layers: 2 }), { seed: 5 });
    const outputs = [
      { prompt: [1, 2, 3], tokens: [4, 5, 6, 7, 8, 9] },
      { prompt: [7], tokens: [3] },
      { prompt: [2, 9, 11, 4, 4], tokens: [1, 22] },
      { prompt: [5, 5], tokens: [] },
    ];
    for (const topK of [1, 3, 10]) {
      const batched = await judgeOutputs(teacher, outputs, { topK, batchSize: 4, pad: 0 });
      const single = await judgeOutputs(teacher, outputs, { topK, batchSize: 1, pad: 0 });
      expect(batched).toEqual(single);
      expect(batched['judgedTokens']).toBe(9);
    }
    expect((await judgeOutputs(teacher, outputs, { topK: 23, batchSize: 4, pad: 0 }))['teacherAcceptance']).toBe(1);
    expect(await tensorsLeakedBy(() => judgeOutputs(teacher, outputs, { topK: 3, batchSize: 2, pad: 0 }))).toBe(0);
    teacher.dispose();
  });
});
