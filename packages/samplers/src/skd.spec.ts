import * as tf from '@tensorflow/tfjs-core';
import { Rng, type Tokenizer } from '@skd/core';
import { tokenLoss, forwardKl, TokenDivergence } from '@skd/divergences';
import { BigramModel, GptModel, generate, gptConfigSchema, type SamplingOptions } from '@skd/models';
import { chiSquare, maxAbsDiff, randomTable, skdClosedForm, tensorsLeakedBy, topKSet, useBackend } from '@skd/testing';
import { mixedSkdEntry, mixedSkdSamplerOptions, skdEntry, skdSamplerOptions } from './entries';
import { SkdSampler, decayedTopK } from './skd';
import { speculativeGenerate, type SpeculativeOptions } from './speculative';

beforeAll(() => useBackend('cpu'));

const V = 6;
const studentTable = randomTable(V, 1);
const teacherTable = randomTable(V, 2, 2);
const K = 2;
const NONE = -1; // an EOS id that never occurs: rows always run to maxNewTokens

function options(over: Partial<SpeculativeOptions> = {}): SpeculativeOptions {
  return {
    maxNewTokens: 1,
    eos: NONE,
    pad: 0,
    draftBlock: 5,
    acceptance: { kind: 'top-k', k: K },
    acceptOn: 'raw',
    replace: 'resample',
    studentSampling: {},
    teacherSampling: {},
    keepTeacherLogProbs: false,
    rng: Rng.create(1),
    ...over,
  };
}

/** Generates `n` sequences from the prompt [0] in chunks, returning every row's tokens. */
async function sampleMany(
  n: number,
  over: Partial<SpeculativeOptions>,
  student = BigramModel.fromProbabilities(studentTable),
  teacher = BigramModel.fromProbabilities(teacherTable),
): Promise<number[][]> {
  const rng = over.rng ?? Rng.create(7);
  const rows: number[][] = [];
  for (let done = 0; done < n; done += 2000) {
    const prompts = Array.from({ length: Math.min(2000, n - done) }, () => [0]);
    rows.push(...(await speculativeGenerate(student, teacher, prompts, options({ ...over, rng }))).tokens);
  }
  student.dispose();
  teacher.dispose();
  return rows;
}

describe('SKD token distribution (bigram toys with known distributions; chi-square at p = 0.001)', () => {
  it('matches the closed form pS(y) 1[y in topK(pT)] + (rejected mass) pT(y) at the first position', async () => {
    const n = 8000;
    const rows = await sampleMany(n, { maxNewTokens: 1 });
    const counts = new Array(V).fill(0);
    rows.forEach((r) => counts[r[0] as number]++);
    const expected = skdClosedForm(studentTable[0] as number[], teacherTable[0] as number[], K);
    expect(chiSquare(counts, expected, n)).toBeLessThan(20.5); // chi-square(5) critical value
    // and it is not simply the student's or the teacher's distribution
    expect(chiSquare(counts, studentTable[0] as number[], n)).toBeGreaterThan(20.5);
    expect(chiSquare(counts, teacherTable[0] as number[], n)).toBeGreaterThan(20.5);
  });

  it.each([
    [5, undefined],
    [1, undefined],
    [1, 8],
  ])(
    'matches the closed form jointly over two positions with draftBlock %i, maxDraftBlock %s (block 1 = token-by-token; adaptive blocks)',
    async (gamma, most) => {
      const n = 8000;
      const rows = await sampleMany(n, {
        maxNewTokens: 2,
        draftBlock: gamma,
        ...(most ? { maxDraftBlock: most } : {}),
        rng: Rng.create(10 + gamma + (most ?? 0)),
      });
      const counts = new Array(V * V).fill(0);
      rows.forEach((r) => counts[(r[0] as number) * V + (r[1] as number)]++);
      const first = skdClosedForm(studentTable[0] as number[], teacherTable[0] as number[], K);
      const joint = first.flatMap((p1, y1) => skdClosedForm(studentTable[y1] as number[], teacherTable[y1] as number[], K).map((p2) => p1 * p2));
      expect(chiSquare(counts, joint, n)).toBeLessThan(66.6); // chi-square(35)
    },
  );

  it('with acceptTest "resample" matches pS(y) a + (1 - a) pT(y), a = pS(topK(pT)): the draft is kept when a fresh student sample passes', async () => {
    const n = 8000;
    const rows = await sampleMany(n, { maxNewTokens: 1, acceptTest: 'resample', rng: Rng.create(21) });
    const counts = new Array(V).fill(0);
    rows.forEach((r) => counts[r[0] as number]++);
    const pS = studentTable[0] as number[];
    const pT = teacherTable[0] as number[];
    const top = topKSet(pT, K);
    const a = pS.reduce((sum, p, y) => sum + (top.has(y) ? p : 0), 0);
    const expected = pS.map((p, y) => p * a + (1 - a) * (pT[y] as number));
    expect(chiSquare(counts, expected, n)).toBeLessThan(20.5); // chi-square(5)
    // and not the paper's test of the draft itself
    expect(chiSquare(counts, skdClosedForm(pS, pT, K), n)).toBeGreaterThan(20.5);
  });

  it('with acceptTest "resample" keeps drafts outside the top-K and rejects some inside it, at the same mean acceptance', async () => {
    const prompts = Array.from({ length: 2000 }, () => [0]);
    const run = async (acceptTest: 'draft' | 'resample') => {
      const student = BigramModel.fromProbabilities(studentTable);
      const teacher = BigramModel.fromProbabilities(teacherTable);
      const result = await speculativeGenerate(student, teacher, prompts, options({ maxNewTokens: 4, acceptTest, rng: Rng.create(5) }));
      student.dispose();
      teacher.dispose();
      let outside = 0;
      result.tokens.forEach((row, b) =>
        row.forEach((token, j) => {
          const pT = teacherTable[j === 0 ? 0 : (row[j - 1] as number)] as number[];
          if (result.origins[b]?.[j] === 'draft' && !topKSet(pT, K).has(token)) outside++;
        }),
      );
      return { outside, rate: result.stats.accepted / result.stats.judged };
    };
    const draft = await run('draft');
    const resample = await run('resample');
    expect(draft.outside).toBe(0);
    expect(resample.outside).toBeGreaterThan(100);
    expect(Math.abs(resample.rate - draft.rate)).toBeLessThan(0.05);
  });

  it("with argmax replacement puts the teacher's argmax at every rejection", async () => {
    const student = BigramModel.fromProbabilities(studentTable);
    const teacher = BigramModel.fromProbabilities(teacherTable);
    const result = await speculativeGenerate(
      student,
      teacher,
      Array.from({ length: 300 }, () => [0]),
      options({ maxNewTokens: 6, replace: 'argmax' }),
    );
    let replacements = 0;
    result.tokens.forEach((row, b) =>
      row.forEach((token, j) => {
        const prev = j === 0 ? 0 : (row[j - 1] as number);
        const pT = teacherTable[prev] as number[];
        if (result.origins[b]?.[j] === 'teacher') {
          replacements++;
          expect(token).toBe(pT.indexOf(Math.max(...pT)));
        } else expect(topKSet(pT, K).has(token)).toBe(true);
      }),
    );
    expect(replacements).toBeGreaterThan(100);
    student.dispose();
    teacher.dispose();
  });

  it("with nucleus acceptance accepts exactly the drafts inside the teacher's top-p set", async () => {
    const student = BigramModel.fromProbabilities(studentTable);
    const teacher = BigramModel.fromProbabilities(teacherTable);
    const p = 0.7;
    const result = await speculativeGenerate(
      student,
      teacher,
      Array.from({ length: 300 }, () => [0]),
      options({ maxNewTokens: 6, acceptance: { kind: 'top-p', p } }),
    );
    result.tokens.forEach((row, b) =>
      row.forEach((token, j) => {
        if (result.origins[b]?.[j] !== 'draft') return;
        const pT = teacherTable[j === 0 ? 0 : (row[j - 1] as number)] as number[];
        const sorted = pT.map((q, i) => [q, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
        const before = sorted
          .slice(
            0,
            sorted.findIndex(([, i]) => i === token),
          )
          .reduce((s, [q]) => s + q, 0);
        expect(before).toBeLessThan(p);
      }),
    );
    expect(result.stats.corrections).toBeGreaterThan(0);
    student.dispose();
    teacher.dispose();
  });
});

describe('SKD options each change behaviour', () => {
  it('K = V is exactly on-policy sampling: same tokens as student generation with the same seed', async () => {
    const student = BigramModel.fromProbabilities(studentTable);
    const teacher = BigramModel.fromProbabilities(teacherTable);
    const prompts = Array.from({ length: 50 }, () => [0]);
    const skd = await speculativeGenerate(student, teacher, prompts, options({ maxNewTokens: 8, acceptance: { kind: 'top-k', k: V }, rng: Rng.create(3) }));
    const onPolicy = await generate(student, prompts, { maxNewTokens: 8, eos: NONE, pad: 0, rng: Rng.create(3) });
    expect(skd.tokens).toEqual(onPolicy.tokens);
    expect(skd.stats.corrections).toBe(0);
    expect(skd.stats.accepted).toBe(skd.stats.judged);
    student.dispose();
    teacher.dispose();
  });

  it('acceptOn "warped" judges on the teacher distribution after teacherSampling (zero-probability tokens rejected)', async () => {
    const run = async (acceptOn: 'raw' | 'warped') => {
      const result = await speculativeGenerate(
        BigramModel.fromProbabilities(studentTable),
        BigramModel.fromProbabilities(teacherTable),
        Array.from({ length: 200 }, () => [0]),
        options({
          maxNewTokens: 4,
          acceptance: { kind: 'top-k', k: V },
          acceptOn,
          teacherSampling: { topP: 0.5 },
        }),
      );
      return result.stats;
    };
    expect((await run('raw')).corrections).toBe(0); // K = V accepts everything on the raw distribution
    expect((await run('warped')).corrections).toBeGreaterThan(50); // top-p 0.5 leaves most tokens at zero
  });

  it("drafts with the student's own sampling settings (greedy drafts follow the student's argmax)", async () => {
    const student = BigramModel.fromProbabilities(studentTable);
    const teacher = BigramModel.fromProbabilities(teacherTable);
    const result = await speculativeGenerate(
      student,
      teacher,
      [[0], [3]],
      options({ maxNewTokens: 5, acceptance: { kind: 'top-k', k: V }, studentSampling: { greedy: true } }),
    );
    const argmax = (row: number[]) => row.indexOf(Math.max(...row));
    result.tokens.forEach((row, b) =>
      row.forEach((t, j) => expect(t).toBe(argmax(studentTable[j === 0 ? ([0, 3][b] as number) : (row[j - 1] as number)] as number[]))),
    );
    student.dispose();
    teacher.dispose();
  });

  it('draftBlock sets the number of teacher forwards: gamma 5 needs far fewer per token than gamma 1 at high acceptance', async () => {
    // Single-row runs: in a batch the slowest row sets the number of rounds.
    const forwards = async (gamma: number) => {
      let passes = 0;
      let tokens = 0;
      let accepted = 0;
      let judged = 0;
      const rng = Rng.create(gamma);
      for (let i = 0; i < 20; i++) {
        const { stats } = await speculativeGenerate(
          BigramModel.fromProbabilities(studentTable),
          BigramModel.fromProbabilities(teacherTable),
          [[0]],
          options({ maxNewTokens: 30, draftBlock: gamma, acceptance: { kind: 'top-k', k: V - 1 }, rng }),
        );
        passes += stats.teacherForwards;
        tokens += stats.tokensGenerated;
        accepted += stats.accepted;
        judged += stats.judged;
      }
      expect(accepted / judged).toBeGreaterThan(0.75);
      return passes / tokens;
    };
    const one = await forwards(1);
    const five = await forwards(5);
    expect(one).toBeGreaterThan(0.9);
    expect(five).toBeLessThan(one / 2.5);
  });

  it('adaptive blocks grow while drafts are kept: fewer teacher forwards than a fixed block, the same distribution (above)', async () => {
    const run = async (over: Partial<SpeculativeOptions>) => {
      let passes = 0;
      let tokens = 0;
      let blocks = 0;
      const rng = Rng.create(3);
      for (let i = 0; i < 20; i++) {
        const { stats } = await speculativeGenerate(
          BigramModel.fromProbabilities(studentTable),
          BigramModel.fromProbabilities(teacherTable),
          [[0]],
          options({ maxNewTokens: 60, acceptance: { kind: 'top-k', k: V - 1 }, rng, ...over }),
        );
        passes += stats.teacherForwards;
        tokens += stats.tokensGenerated;
        blocks += stats.meanDraftBlock;
      }
      return { perToken: passes / tokens, meanBlock: blocks / 20 };
    };
    const fixed = await run({ draftBlock: 5 });
    const adaptive = await run({ draftBlock: 5, maxDraftBlock: 32 });
    expect(fixed.meanBlock).toBe(5);
    expect(adaptive.meanBlock).toBeGreaterThan(5);
    expect(adaptive.perToken).toBeLessThan(fixed.perToken);
    await expect(
      speculativeGenerate(
        BigramModel.fromProbabilities(studentTable),
        BigramModel.fromProbabilities(teacherTable),
        [[0]],
        options({ draftBlock: 5, maxDraftBlock: 4 }),
      ),
    ).rejects.toThrow('maxDraftBlock must be an integer >= draftBlock (5), got 4');
  });

  it('stops rows at EOS at different times and never exceeds maxNewTokens', async () => {
    const eos = 5;
    const result = await speculativeGenerate(
      BigramModel.fromProbabilities(studentTable),
      BigramModel.fromProbabilities(teacherTable),
      Array.from({ length: 100 }, () => [0]),
      options({ maxNewTokens: 7, eos }),
    );
    const lengths = new Set(result.tokens.map((r) => r.length));
    expect(lengths.size).toBeGreaterThan(2);
    result.tokens.forEach((row) => {
      expect(row.length).toBeLessThanOrEqual(7);
      const at = row.indexOf(eos);
      if (at >= 0) expect(at).toBe(row.length - 1);
      else expect(row.length).toBe(7);
    });
  });

  it('rejects bad arguments with the value', async () => {
    const s = BigramModel.fromProbabilities(studentTable);
    await expect(speculativeGenerate(s, s, [[0]], options({ draftBlock: 0 }))).rejects.toThrow('draftBlock must be an integer >= 1, got 0');
    await expect(speculativeGenerate(s, BigramModel.fromProbabilities(randomTable(4, 1)), [[0]], options())).rejects.toThrow(
      "student vocabulary 6 differs from the teacher's 4",
    );
    s.dispose();
  });
});

/** The same model without its native whole-loop path: SKD then drafts step by step through decode. */
function stepByStep(model: GptModel): GptModel {
  return Object.assign(Object.create(model) as GptModel, { generateTokens: undefined });
}

// On cpu SKD drafts through decode step by step (tensor KV cache); on wasm the student drafts each
// round in one native loop (native KV cache). Both must keep every cache consistent.
describe.each(['cpu', 'wasm'] as const)('SKD with GPT models on %s: batched caches stay consistent through per-row rollbacks', (backend) => {
  beforeAll(() => useBackend(backend));
  afterAll(() => useBackend('cpu'));
  /** A GPT with large random weights: peaked, model-specific distributions (fresh GPTs are near uniform). */
  const cfg = (layers: number, seed: number) => {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: 11, contextLength: 48, layers, heads: 2, dModel: 16 }), { seed });
    model.trainableVariables.forEach((v, i) => tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', seed * 100 + i))));
    return model;
  };
  const tokenizer = { special: { pad: 0, eos: 10 }, vocabSize: 11 } as unknown as Tokenizer;

  it.each([
    ['a fixed block', {}],
    ['adaptive blocks', { draftBlock: 2, maxDraftBlock: 8 }],
  ])('with %s, every kept teacher distribution equals a full recomputation on the final sequence, and so does every greedy draft', async (_name, blocks) => {
    const student = cfg(1, 1);
    const teacher = cfg(2, 2);
    const prompts = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 1]];
    const studentSampling: SamplingOptions = { greedy: true };
    const widths: number[] = [];
    const decode = teacher.decode.bind(teacher);
    const spy = jest.spyOn(teacher, 'decode').mockImplementation((tokens, state, opts) => {
      widths.push(tokens.shape[1]);
      return decode(tokens, state, opts);
    });
    const result = await speculativeGenerate(
      student,
      teacher,
      prompts,
      options({ maxNewTokens: 12, draftBlock: 4, acceptance: { kind: 'top-k', k: 4 }, keepTeacherLogProbs: true, studentSampling, ...blocks }),
    );
    spy.mockRestore();
    expect(result.stats.corrections).toBeGreaterThan(3); // rows rolled back at different places
    expect(result.stats.accepted).toBeGreaterThan(3);
    // Verification blocks are as wide as their longest row: the first round has no replacement
    // pending (a block of drafts, no padding column), and later rounds shrink as rows end.
    const verifications = widths.slice(1); // after the prompt prefill
    const set: Partial<SpeculativeOptions> = blocks;
    expect(verifications[0]).toBe(set.draftBlock ?? 4);
    if (set.maxDraftBlock === undefined) expect(Math.min(...verifications)).toBeLessThan(4);
    for (const [b, prompt] of prompts.entries()) {
      const seq = [...prompt, ...(result.tokens[b] as number[])];
      const ids = tf.tensor2d([seq], [1, seq.length], 'int32');
      const teacherFull = tf.tidy(() => tf.logSoftmax(teacher.logits(ids)).arraySync() as number[][][]);
      const studentFull = tf.tidy(() => student.logits(ids).arraySync() as number[][][]);
      ids.dispose();
      (result.tokens[b] as number[]).forEach((token, j) => {
        const column = prompt.length + j - 1;
        expect(maxAbsDiff(result.teacherLogProbs?.[b]?.[j] as Float32Array, teacherFull[0]?.[column] as number[])).toBeLessThan(1e-4);
        if (result.origins[b]?.[j] === 'draft') {
          const row = studentFull[0]?.[column] as number[];
          expect(token).toBe(row.indexOf(Math.max(...row)));
        }
      });
    }
    student.dispose();
    teacher.dispose();
  });

  it("the sampler's cached teacher log-probs give the same loss as running the teacher again", async () => {
    const student = cfg(1, 3);
    const teacher = cfg(2, 4);
    const sampler = new SkdSampler(
      { student, teacher, tokenizer, rng: Rng.create(5) },
      {
        topK: 3,
        acceptance: 'top-k',
        topP: 0.9,
        acceptOn: 'raw',
        replace: 'resample',
        acceptTest: 'draft',
        draftBlock: 5,
        kDecay: false,
        kDecayUnit: 'steps' as const,
        ratio: 1,
        maxNewTokens: 10,
        studentSampling: {},
        teacherSampling: {},
        cacheTeacherLogProbs: true,
        maxCachedTeacherFloats: 1e9,
      },
    );
    const batch = await sampler.sample({ prompts: [[1, 2], [3], [4, 5, 6]], references: [[], [], []], ids: ['a', 'b', 'c'] }, { step: 0, totalSteps: 10 });
    expect(batch.teacherLogProbs).toBeDefined();
    expect(batch.stats['acceptanceRate']).toBeGreaterThan(0);
    const divergence = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });
    const loss = (cached: boolean) =>
      tf.tidy(() => {
        const studentLogits = student.logits(batch.tokens, { mask: batch.attentionMask });
        const teacherInput = cached
          ? { teacherLogProbs: batch.teacherLogProbs }
          : { teacherLogits: teacher.logits(batch.tokens, { mask: batch.attentionMask }) };
        return tokenLoss({ divergence, tokens: batch.tokens, targetMask: batch.targetMask, studentLogits, ...teacherInput }).dataSync()[0] as number;
      });
    expect(Math.abs(loss(true) - loss(false))).toBeLessThan(1e-5);
    batch.dispose();
    student.dispose();
    teacher.dispose();
  });

  (backend === 'wasm' ? it : it.skip)('drafts in one native loop per round with exactly the step-by-step tokens, statistics and random draws', async () => {
    const student = cfg(1, 7);
    const teacher = cfg(2, 8);
    const prompts = [[1, 2, 3], [4], [5, 6]];
    for (const studentSampling of [{}, { greedy: true }, { temperature: 0.7, topK: 4 }] as SamplingOptions[]) {
      const run = async (s: GptModel) => {
        const rng = Rng.create(9);
        const result = await speculativeGenerate(
          s,
          teacher,
          prompts,
          options({ maxNewTokens: 14, eos: 10, draftBlock: 4, acceptance: { kind: 'top-k', k: 3 }, keepTeacherLogProbs: true, studentSampling, rng }),
        );
        return {
          tokens: result.tokens,
          origins: result.origins,
          stats: { ...result.stats, studentForwards: 0 },
          rng: rng.getState(),
          kept: result.teacherLogProbs?.flat().map((x) => Array.from(x)),
        };
      };
      const native = await run(student);
      const reference = await run(stepByStep(student));
      expect(native.tokens).toEqual(reference.tokens);
      expect(native.origins).toEqual(reference.origins);
      expect(native.stats).toEqual(reference.stats);
      expect(native.rng).toEqual(reference.rng);
      expect(maxAbsDiff((native.kept ?? []).flat(), (reference.kept ?? []).flat())).toBeLessThan(1e-4);
    }
    const spy = jest.spyOn(student, 'decode');
    await speculativeGenerate(student, teacher, prompts, options({ maxNewTokens: 14, eos: 10, draftBlock: 4, acceptance: { kind: 'top-k', k: 3 } }));
    expect(spy).toHaveBeenCalledTimes(1); // the student decodes only its prompt; each round's drafts are one native loop
    spy.mockRestore();
    student.dispose();
    teacher.dispose();
  });

  it('keeps numTensors flat over 100 sampling rounds', async () => {
    const student = cfg(1, 5);
    const teacher = cfg(1, 6);
    const rng = Rng.create(2);
    const leaked = await tensorsLeakedBy(async () => {
      for (let i = 0; i < 25; i++) {
        await speculativeGenerate(
          student,
          teacher,
          [[1], [2, 3]],
          options({ maxNewTokens: 8, eos: 10, draftBlock: 2, acceptance: { kind: 'top-k', k: 4 }, keepTeacherLogProbs: true, rng }),
        );
      }
    });
    expect(leaked).toBe(0);
    student.dispose();
    teacher.dispose();
  });
});

describe('SkdSampler', () => {
  const tokenizer = { special: { pad: 0, eos: NONE }, vocabSize: V } as unknown as Tokenizer;
  const base = {
    topK: K,
    acceptance: 'top-k' as const,
    topP: 0.9,
    acceptOn: 'raw' as const,
    replace: 'resample' as const,
    acceptTest: 'draft' as const,
    draftBlock: 5,
    kDecay: false,
    kDecayUnit: 'steps' as const,
    ratio: 1,
    maxNewTokens: 4,
    studentSampling: {},
    teacherSampling: {},
    cacheTeacherLogProbs: true,
    maxCachedTeacherFloats: 1e9,
  };
  const prompts = { prompts: [[0], [1], [2]], references: [[3, 4], [5], [1, 1]], ids: ['a', 'b', 'c'] };

  it("refuses topK at or above the vocabulary, which would be on-policy KD under SKD's name", () => {
    const models = {
      student: BigramModel.fromProbabilities(randomTable(V, 1)),
      teacher: BigramModel.fromProbabilities(randomTable(V, 2)),
      tokenizer,
      rng: Rng.create(1),
    };
    expect(() => new SkdSampler(models, { ...base, topK: V })).toThrow(
      `sampler.options.topK: topK ${V} is not below the vocabulary size ${V}: the teacher accepts every draft, which is on-policy KD`,
    );
    expect(() => new SkdSampler(models, { ...base, topK: V - 1 })).not.toThrow();
  });

  it('names the kind the config named when the teacher is missing', async () => {
    const deps = { student: BigramModel.fromProbabilities(studentTable), teacher: undefined, tokenizer, rng: Rng.create(1), baseDir: '.' };
    await expect(Promise.resolve().then(() => mixedSkdEntry.create(mixedSkdSamplerOptions({ topK: 2 }), deps))).rejects.toThrow(
      'the "mixed-skd" sampler needs a teacher model',
    );
    await expect(Promise.resolve().then(() => skdEntry.create(skdSamplerOptions({ topK: 2 }), deps))).rejects.toThrow(
      'the "skd" sampler needs a teacher model',
    );
    deps.student.dispose();
  });

  it('maps acceptance "top-p" with topP to nucleus acceptance (a tiny nucleus rejects more)', async () => {
    const run = async (topP: number) => {
      let corrections = 0;
      for (let i = 0; i < 20; i++) {
        const models = {
          student: BigramModel.fromProbabilities(studentTable),
          teacher: BigramModel.fromProbabilities(teacherTable),
          tokenizer,
          rng: Rng.create(i),
        };
        const batch = await new SkdSampler(models, { ...base, acceptance: 'top-p', topP }).sample(prompts, { step: 0, totalSteps: 1 });
        corrections += (batch.stats['correctionsPerSequence'] as number) * 3;
        batch.dispose();
      }
      return corrections;
    };
    expect(await run(0.05)).toBeGreaterThan((await run(0.99)) + 20);
  });

  it('passes acceptTest on from its options: at K 1 with argmax replacement only "resample" keeps tokens off the teacher\'s greedy path', async () => {
    const offPath = async (acceptTest: 'draft' | 'resample') => {
      const deps = {
        student: BigramModel.fromProbabilities(studentTable),
        teacher: BigramModel.fromProbabilities(teacherTable),
        tokenizer,
        rng: Rng.create(3),
        baseDir: '.',
      };
      const sampler = await skdEntry.create(skdSamplerOptions({ topK: 1, replace: 'argmax', acceptTest, maxNewTokens: 4 }), deps);
      let off = 0;
      for (let i = 0; i < 10; i++) {
        const batch = await sampler.sample(prompts, { step: 0, totalSteps: 1 });
        const rows = (await batch.tokens.array()) as number[][];
        const targets = (await batch.targetMask.array()) as number[][];
        rows.forEach((row, b) =>
          row.forEach((token, t) => {
            if (!targets[b]?.[t]) return; // response tokens only; each follows the token before it
            const pT = teacherTable[row[t - 1] as number] as number[];
            if (token !== pT.indexOf(Math.max(...pT))) off++;
          }),
        );
        batch.dispose();
      }
      deps.student.dispose();
      deps.teacher.dispose();
      return off;
    };
    expect(await offPath('draft')).toBe(0);
    expect(await offPath('resample')).toBeGreaterThan(10);
  });

  it('decays K linearly over training when kDecay is on', () => {
    const models = {
      student: BigramModel.fromProbabilities(studentTable),
      teacher: BigramModel.fromProbabilities(teacherTable),
      tokenizer,
      rng: Rng.create(1),
    };
    const decaying = new SkdSampler(models, { ...base, topK: 25, kDecay: true });
    expect([0, 3, 4, 8, 96, 99].map((s) => decaying.topKAt(s, 100))).toEqual([25, 25, 24, 23, 1, 1]);
    expect([0, 1, 2, 8, 9].map((s) => decaying.topKAt(s, 10))).toEqual([25, 22, 19, 1, 1]);
    expect(new SkdSampler(models, { ...base, topK: V - 1 }).topKAt(99, 100)).toBe(V - 1); // without kDecay K stays put
    // kDecayHorizon replaces the run's steps as L: over 1000 steps K 25 has lost one at step 50, over 100 twelve.
    expect(new SkdSampler(models, { ...base, topK: 25, kDecay: true, kDecayHorizon: 1000 }).topKAt(50, 100)).toBe(24);
    expect(decaying.topKAt(50, 100)).toBe(13);
  });

  it("follows the authors' schedule per unit: floor over steps, the first decrease after round 0 over rounds", () => {
    // K 25 over 100 units: one decrement every 4 units. K 25 over 10 units: 3 every unit.
    expect([0, 3, 4, 8, 96, 99].map((i) => decayedTopK(25, i, 100, 'steps'))).toEqual([25, 25, 24, 23, 1, 1]);
    expect([0, 1, 4, 5, 8, 9, 99].map((i) => decayedTopK(25, i, 100, 'rounds'))).toEqual([25, 24, 24, 23, 23, 22, 1]);
    expect([0, 1, 2, 8, 9].map((i) => decayedTopK(25, i, 10, 'rounds'))).toEqual([25, 22, 19, 1, 1]);
  });

  it('decays K per verification round within each generation when kDecayUnit is "rounds", starting over every batch', async () => {
    // The student always drafts token 2; the teacher ranks it second everywhere. At K 2 every draft is
    // kept; at K 1 every draft is replaced. Over a horizon of 2 rounds K is 2 in round 0 and 1 after.
    const student = Array.from({ length: V }, () => [0, 0, 1, 0, 0, 0]);
    const teacher = Array.from({ length: V }, () => [0.02, 0.5, 0.3, 0.06, 0.06, 0.06]);
    const models = { student: BigramModel.fromProbabilities(student), teacher: BigramModel.fromProbabilities(teacher), tokenizer, rng: Rng.create(3) };
    const rounds = new SkdSampler(models, { ...base, topK: 2, draftBlock: 3, maxNewTokens: 9, kDecay: true, kDecayUnit: 'rounds', kDecayHorizon: 2 });
    for (const step of [0, 500]) {
      const batch = await rounds.sample(prompts, { step, totalSteps: 1000 });
      const rows = batch.tokens.arraySync().map((row) => row.slice(1));
      // Round 0 keeps the 3 drafts; the replacement it would make does not happen, so round 1 judges at K 1 and replaces the first draft, and so on.
      for (const row of rows) expect(row.slice(0, 3)).toEqual([2, 2, 2]);
      expect(batch.stats['acceptanceRate']).toBeLessThan(0.6);
      expect(batch.stats['topK']).toBeLessThan(2);
      batch.dispose();
    }
    // Over steps (the default unit) K stays 2 for the whole of a generation early in training: every draft kept.
    const steps = new SkdSampler(models, { ...base, topK: 2, draftBlock: 3, maxNewTokens: 9, kDecay: true, kDecayHorizon: 1000 });
    const early = await steps.sample(prompts, { step: 0, totalSteps: 1000 });
    expect(early.stats['acceptanceRate']).toBe(1);
    expect(early.stats['topK']).toBe(2);
    early.dispose();
    // The horizon is honoured over rounds: K 3 keeps the second choice through the 3 rounds of 9 tokens over the
    // default horizon (maxNewTokens 9: K 3, 2, 2), and loses it after round 0 over a horizon of 2 rounds (K 3, 1, 1).
    const over = (kDecayHorizon?: number) =>
      new SkdSampler(models, {
        ...base,
        topK: 3,
        draftBlock: 3,
        maxNewTokens: 9,
        kDecay: true,
        kDecayUnit: 'rounds',
        ...(kDecayHorizon ? { kDecayHorizon } : {}),
      }).sample(prompts, {
        step: 0,
        totalSteps: 1000,
      });
    const longer = await over();
    const shorter = await over(2);
    expect(longer.stats['acceptanceRate']).toBe(1);
    expect(shorter.stats['acceptanceRate']).toBeLessThan(0.6);
    longer.dispose();
    shorter.dispose();
  });

  it('reports its statistics and the K in force as plain numbers', async () => {
    const models = {
      student: BigramModel.fromProbabilities(studentTable),
      teacher: BigramModel.fromProbabilities(teacherTable),
      tokenizer,
      rng: Rng.create(1),
    };
    const batch = await new SkdSampler(models, { ...base, topK: 3, kDecay: true }).sample(prompts, { step: 50, totalSteps: 100 });
    expect(Object.keys(batch.stats).sort()).toEqual(
      [
        'acceptanceRate',
        'correctionsPerSequence',
        'meanAcceptedRun',
        'meanDraftBlock',
        'skdRows',
        'targetTokens',
        'teacherCached',
        'teacherPassesPerToken',
        'tokensGenerated',
        'topK',
      ].sort(),
    );
    expect(batch.stats['topK']).toBe(2);
    expect(Object.values(batch.stats).every((v) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
    batch.dispose();
  });

  it('mixes SKD samples and ground truth by ratio (mixed-skd), and drops the cache above the memory guard', async () => {
    const models = () => ({
      student: BigramModel.fromProbabilities(studentTable),
      teacher: BigramModel.fromProbabilities(teacherTable),
      tokenizer,
      rng: Rng.create(4),
    });
    const allReference = await new SkdSampler(models(), { ...base, ratio: 0 }).sample(prompts, { step: 0, totalSteps: 1 });
    expect(allReference.sources).toEqual(['reference', 'reference', 'reference']);
    expect(allReference.tokens.arraySync()).toEqual([
      [0, 3, 4],
      [1, 5, 0],
      [2, 1, 1],
    ]);
    allReference.dispose();
    const mixed = new SkdSampler(models(), { ...base, ratio: 0.5 });
    let skdBatches = 0;
    for (let i = 0; i < 200; i++) {
      const batch = await mixed.sample(prompts, { step: i, totalSteps: 200 });
      if (batch.sources[0] === 'skd') skdBatches++;
      batch.dispose();
    }
    expect(Math.abs(skdBatches - 100)).toBeLessThan(30); // binomial(200, 0.5): 4.2 standard deviations
    const guarded = await new SkdSampler(models(), { ...base, maxCachedTeacherFloats: 10 }).sample(prompts, { step: 0, totalSteps: 1 });
    expect(guarded.teacherLogProbs).toBeUndefined();
    expect(guarded.stats['teacherCached']).toBe(0);
    guarded.dispose();
    const off = await new SkdSampler(models(), { ...base, cacheTeacherLogProbs: false }).sample(prompts, { step: 0, totalSteps: 1 });
    expect(off.teacherLogProbs).toBeUndefined();
    off.dispose();
    const on = await new SkdSampler(models(), base).sample(prompts, { step: 0, totalSteps: 1 });
    expect(on.teacherLogProbs?.shape).toEqual([3, on.tokens.shape[1], V]);
    on.dispose();
  });
});
