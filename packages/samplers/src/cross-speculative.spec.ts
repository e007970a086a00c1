import * as tf from '@tensorflow/tfjs-core';
import { Rng, alignByByteOffsets, encodePrompt, type LanguageModel } from '@skd/core';
import { BigramModel, BpeTokenizer, ByteTokenizer, GptModel, byteSpans, generate, gptConfigSchema, tokenizerBridge, type TokenizerBridge } from '@skd/models';
import { tensorsLeakedBy, useBackend } from '@skd/testing';
import { crossTokenizerSpeculative, type CrossSpeculativeOptions } from './cross-speculative';
import { skdSamplerOptions } from './entries';
import { SkdSampler } from './skd';

beforeAll(() => useBackend('cpu'));

const student = new ByteTokenizer();
const sums = ['2+2=4', '3+1=4', '12+1=13', '5+5=10', 'the cat sat', 'the mat'];
const teacherTokenizer = BpeTokenizer.train([...sums, ...sums.map((s) => `${s} ${s}`)], { vocabSize: 285, minFrequency: 1 });
const gpt = (vocabSize: number, seed: number) =>
  new GptModel(gptConfigSchema.parse({ vocabSize, contextLength: 96, layers: 1, heads: 2, dModel: 16 }), { seed });
const prompts = ['12+1=', 'the ', '5+5=10 and 3+'].map((p) => encodePrompt(student, p));

function options(over: Partial<CrossSpeculativeOptions> = {}): CrossSpeculativeOptions {
  return {
    maxNewTokens: 12,
    draftBlock: 3,
    acceptanceAt: () => ({ kind: 'top-k', k: 60 }),
    acceptOn: 'raw',
    replace: 'argmax',
    studentSampling: { greedy: true },
    teacherSampling: {},
    rng: Rng.create(3),
    ...over,
  };
}

/** The teacher's logits at each position of one sequence. */
function teacherLogits(teacher: LanguageModel, sequence: readonly number[]): number[][] {
  return tf.tidy(() => (teacher.logits(tf.tensor2d([[...sequence]], undefined, 'int32')).arraySync() as number[][][])[0] as number[][]);
}

/** Whether `token` is among the `k` largest of `row` (explicit sort). */
const inTopK = (row: readonly number[], token: number, k: number) =>
  row
    .map((v, id) => [v, id] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .some(([, id]) => id === token);

/**
 * The definition one row at a time, token by token: the student drafts greedily, the teacher's
 * tokens of the draft's text are judged one by one on a full forward of the row, groups are kept up
 * to the first holding a rejected teacher token, and the teacher's argmax replaces it.
 */
async function reference(
  studentModel: LanguageModel,
  teacher: LanguageModel,
  bridge: TokenizerBridge,
  prompt: readonly number[],
  k: number,
  block: number,
  budget: number,
) {
  const teacherPrompt = bridge.teacherPrompt(prompt);
  let [s, t, text] = [[] as number[], [] as number[], ''];
  const eos = student.special.eos;
  for (;;) {
    const { tokens } = await generate(studentModel, [[...prompt, ...s]], {
      greedy: true,
      maxNewTokens: Math.min(block, budget - s.length),
      eos,
      pad: 0,
      rng: Rng.create(0),
    });
    const draft = tokens[0] as number[];
    const ended = draft.at(-1) === eos;
    const body = ended ? draft.slice(0, -1) : draft;
    const teacherBody = teacherTokenizer.encode(student.decode(body));
    const teacherDraft = ended ? [...teacherBody, teacherTokenizer.special.eos] : teacherBody;
    const logits = teacherLogits(teacher, [...teacherPrompt, ...t, ...teacherDraft]);
    const at = (j: number) => logits[teacherPrompt.length + t.length + j - 1] as number[];
    const groups = alignByByteOffsets(byteSpans(student, body), byteSpans(teacherTokenizer, teacherBody));
    if (ended) {
      groups.student.push([body.length]);
      groups.teacher.push([teacherBody.length]);
    }
    let keptS = 0;
    let keptT = 0;
    let rejected = false;
    for (const [g, group] of groups.teacher.entries()) {
      if (!group.every((j) => inTopK(at(j), teacherDraft[j] as number, k))) {
        rejected = true;
        break;
      }
      keptS += (groups.student[g] as number[]).length;
      keptT += group.length;
    }
    const before = text;
    let end = !rejected && ended;
    text += student.decode(body.slice(0, Math.min(keptS, body.length)));
    if (rejected) {
      const row = at(keptT);
      const token = row.indexOf(Math.max(...row));
      if (token === teacherTokenizer.special.eos) end = true;
      else text += teacherTokenizer.decode([token]);
    }
    // Each side's own encoding of the text so far.
    s = [...student.encode(text), ...(end ? [eos] : [])];
    t = [...teacherTokenizer.encode(text), ...(end ? [teacherTokenizer.special.eos] : [])];
    if (s.length >= budget) return s.slice(0, budget);
    if (end || text === before) return s;
  }
}

describe('SKD across tokenizers', () => {
  it.each([
    [60, 3],
    [5, 2],
    [200, 4],
  ])('equals the definition run one row and one token at a time (K %i, draft block %i)', async (k, block) => {
    const [studentModel, teacher] = [gpt(student.vocabSize, 1), gpt(teacherTokenizer.vocabSize, 2)];
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const ours = await crossTokenizerSpeculative(
      studentModel,
      teacher,
      bridge,
      prompts,
      options({ acceptanceAt: () => ({ kind: 'top-k', k }), draftBlock: block }),
    );
    for (const [b, prompt] of prompts.entries()) {
      expect(ours.tokens[b]).toEqual(await reference(studentModel, teacher, bridge, prompt, k, block, 12));
    }
    const { judged, accepted, corrections } = ours.stats;
    expect(judged).toBeGreaterThanOrEqual(accepted);
    if (k === 5) expect(corrections).toBeGreaterThan(0);
    studentModel.dispose();
    teacher.dispose();
  });

  it("keeps every draft when K covers the teacher's vocabulary: the student's own samples, acceptance 1", async () => {
    const [studentModel, teacher] = [gpt(student.vocabSize, 4), gpt(teacherTokenizer.vocabSize, 5)];
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const all = await crossTokenizerSpeculative(
      studentModel,
      teacher,
      bridge,
      prompts,
      options({ acceptanceAt: () => ({ kind: 'top-k', k: teacherTokenizer.vocabSize }), studentSampling: {}, replace: 'resample' }),
    );
    expect(all.stats.corrections).toBe(0);
    expect(all.stats.accepted).toBe(all.stats.judged);
    expect(all.stats.teacherAccepted).toBe(all.stats.teacherJudged);
    expect(all.tokens.every((row) => row.length === 12 || row.at(-1) === student.special.eos)).toBe(true);
    studentModel.dispose();
    teacher.dispose();
  });

  it("writes each row in the student's own tokens: a teacher's one-byte replacements join the student's merged tokens", async () => {
    // The other way round: a student with merges ("the" is one token), a byte-level teacher that only
    // ever writes "the the the ..." (a bigram table), K 1: every other draft is replaced byte by byte.
    const next: Record<string, string> = { t: 'h', h: 'e', e: ' ', ' ': 't' };
    const table = Array.from({ length: student.vocabSize }, (_, id) => {
      const row = new Array<number>(student.vocabSize).fill(0.01 / student.vocabSize);
      row[(next[String.fromCharCode(id)] ?? 't').charCodeAt(0)] = 0.99;
      return row;
    });
    const [studentModel, teacher] = [gpt(teacherTokenizer.vocabSize, 6), BigramModel.fromProbabilities(table, 96)];
    const bridge = tokenizerBridge(teacherTokenizer, student);
    const result = await crossTokenizerSpeculative(
      studentModel,
      teacher,
      bridge,
      [encodePrompt(teacherTokenizer, 'the')],
      options({ acceptanceAt: () => ({ kind: 'top-k', k: 1 }), maxNewTokens: 8 }),
    );
    const [row] = result.tokens as [number[]];
    expect(result.stats.corrections).toBeGreaterThan(3);
    expect(teacherTokenizer.decode(row)).toMatch(/^ the the/);
    // The student's token for " the", not the four bytes the teacher wrote it in.
    expect(row).toEqual(teacherTokenizer.encode(teacherTokenizer.decode(row)));
    expect(row).toContain(teacherTokenizer.encode(' the')[0]);
    studentModel.dispose();
    teacher.dispose();
  });

  it("ends a row where the teacher's context is full, judging only what fits", async () => {
    const [studentModel, teacher] = [
      gpt(student.vocabSize, 1),
      new GptModel(gptConfigSchema.parse({ vocabSize: teacherTokenizer.vocabSize, contextLength: 10, layers: 1, heads: 2, dModel: 16 }), { seed: 2 }),
    ];
    const bridge = tokenizerBridge(student, teacherTokenizer);
    const short = [encodePrompt(student, '2+2='), encodePrompt(student, 'the ')];
    const result = await crossTokenizerSpeculative(
      studentModel,
      teacher,
      bridge,
      short,
      options({ maxNewTokens: 40, acceptanceAt: () => ({ kind: 'top-k', k: 200 }) }),
    );
    for (const [b, tokens] of result.tokens.entries()) {
      // The teacher read at most its context: its prompt and the response's rounds.
      expect(tokens.length).toBeLessThan(40);
      expect(bridge.teacherPrompt(short[b] as number[]).length).toBeLessThan(10);
    }
    await expect(
      crossTokenizerSpeculative(studentModel, teacher, bridge, [encodePrompt(student, 'a prompt far longer than ten tokens')], options()),
    ).rejects.toThrow(/leaving no room in its context 10/);
    studentModel.dispose();
    teacher.dispose();
  });

  it('runs from the skd sampler with a teacher tokenizer, reports acceptance on both sides, leaks nothing; refuses what it cannot do', async () => {
    const [studentModel, teacher] = [gpt(student.vocabSize, 1), gpt(teacherTokenizer.vocabSize, 2)];
    const models = { student: studentModel, teacher, tokenizer: student, teacherTokenizer, rng: Rng.create(9) };
    const sampler = new SkdSampler(models, skdSamplerOptions({ topK: 150, maxNewTokens: 8 }));
    const batch = { prompts, references: prompts.map(() => []), ids: ['a', 'b', 'c'] };
    const leaked = await tensorsLeakedBy(async () => {
      const kd = await sampler.sample(batch, { step: 0, totalSteps: 1 });
      expect(kd.stats['acceptanceRate']).toBeGreaterThan(0);
      expect(kd.stats['teacherAcceptanceRate']).toBeGreaterThan(0);
      expect(kd.stats['teacherCached']).toBe(0);
      expect(kd.teacherLogProbs).toBeUndefined();
      expect(kd.tokens.shape[0]).toBe(3);
      kd.dispose();
    });
    expect(leaked).toBe(0);
    expect(() => new SkdSampler(models, skdSamplerOptions({ acceptTest: 'resample' }))).toThrow(/acceptTest "draft"/);
    expect(() => new SkdSampler(models, skdSamplerOptions({ maxDraftBlock: 8 }))).toThrow(/maxDraftBlock/);
    studentModel.dispose();
    teacher.dispose();
  });
});
