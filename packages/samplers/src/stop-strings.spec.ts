import { Rng, cutAtStopStrings, generationStops, stopStringAt, type PromptBatch, type Tokenizer } from '@skd/core';
import { BigramModel, ByteTokenizer } from '@skd/models';
import { useBackend } from '@skd/testing';
import type { SamplerModels } from './generating';
import { OnPolicySampler } from './on-policy';
import { SeqKdSampler } from './seq-kd';
import { SkdSampler, cutSamples } from './skd';

beforeAll(() => useBackend('cpu'));

const tokenizer = new ByteTokenizer();
const V = tokenizer.vocabSize;
const EOS = tokenizer.special.eos;
const ids = (text: string) => tokenizer.encode(text);

/** A bigram that writes "b", a newline, then "c" for ever: the newline is where a translation ends. */
function afterNewline(confidence = 0.999): BigramModel {
  const next: Record<number, number> = { 97: 98, 98: 10, 10: 99, 99: 99 };
  return BigramModel.fromProbabilities(
    Array.from({ length: V }, (_, from) => Array.from({ length: V }, (_, to) => (to === (next[from] ?? 99) ? confidence : (1 - confidence) / (V - 1)))),
    64,
  );
}

const models = (): SamplerModels => ({ student: afterNewline(), teacher: afterNewline(0.99), tokenizer, rng: Rng.create(1) });
const prompts = (stopStrings?: string[]): PromptBatch => ({
  prompts: [ids('a'), ids('xa')],
  references: [
    [...ids('b'), EOS],
    [...ids('b'), EOS],
  ],
  ids: ['1', '2'],
  ...(stopStrings ? { stopStrings } : {}),
});
const responsesOf = (tokens: number[][], prompt: readonly (readonly number[])[]) =>
  tokens.map((row, b) => row.slice((prompt[b] as number[]).length).filter((t) => t !== tokenizer.special.pad));

describe('stop strings', () => {
  it('find the earliest of several, and cut a response to the text before it, encoded with EOS', () => {
    expect(stopStringAt('one\ntwo###', ['###', '\n'])).toBe(3);
    expect(stopStringAt('one two', ['\n'])).toBe(-1);
    expect(stopStringAt('anything', [])).toBe(-1);
    expect(cutAtStopStrings(tokenizer, [...ids('b\ncc'), EOS], ['\n'])).toEqual([98, EOS]);
    expect(cutAtStopStrings(tokenizer, ids('b\ncc'), ['\n'])).toEqual([98, EOS]); // ran out of budget: the cut still ends the response
    expect(cutAtStopStrings(tokenizer, ids('\nb'), ['\n'])).toEqual([EOS]);
    expect(cutAtStopStrings(tokenizer, ids('bcc'), ['\n'])).toBeUndefined();
    expect(cutAtStopStrings(tokenizer, ids('b\nc'), undefined)).toBeUndefined();
    // A chat model's row ends with its end of turn, as its references do: the cut keeps that token.
    const chat = Object.assign(Object.create(tokenizer), { special: { ...tokenizer.special, stop: [300] } }) as typeof tokenizer;
    expect(cutAtStopStrings(chat, [...ids('b\ncc'), 300], ['\n'])).toEqual([98, 300]);
    expect(cutAtStopStrings(chat, [...ids('b\ncc'), EOS], ['\n'])).toEqual([98, EOS]);
    expect(cutAtStopStrings(chat, ids('b\ncc'), ['\n'])).toEqual([98, EOS]);
  });

  it("end generation at every token whose text holds a stop string, besides the tokenizer's own stop ids", () => {
    expect(generationStops(tokenizer, ['\n'])).toEqual([10]);
    expect(generationStops(tokenizer, undefined)).toBeUndefined();
    expect(generationStops(tokenizer, ['\n\n'])).toBeUndefined(); // two byte tokens: only the cut finds it
    const pieces = ['<eos>', 'b\n', '\n', 'c', 'x\n\ny', 'n'];
    const merged = {
      kind: 'test',
      vocabSize: pieces.length,
      special: { pad: 0, eos: 0, stop: [3] },
      fingerprint: 'pieces',
      encode: () => [],
      decode: (ids: readonly number[]) => ids.map((id) => pieces[id]).join(''),
      toJSON: () => ({}),
    } satisfies Tokenizer;
    expect(generationStops(merged, ['\n'])).toEqual([1, 2, 3, 4]);
    expect(generationStops(merged, ['\n\n', 'n'])).toEqual([3, 4, 5]);
    expect(generationStops(merged, [])).toEqual([3]);
  });

  it('end a row at the token that holds a stop string: what the cut drops is never generated', async () => {
    const m = models();
    const decode = jest.spyOn(m.student, 'decode');
    const plain = await new OnPolicySampler(m, { maxNewTokens: 5, sampling: { greedy: true } }).sample(prompts(), { step: 0, totalSteps: 1 });
    plain.dispose();
    expect(decode).toHaveBeenCalledTimes(5); // the prompts, then four more positions: "b\nccc"
    decode.mockClear();
    const cut = await new OnPolicySampler(m, { maxNewTokens: 5, sampling: { greedy: true } }).sample(prompts(['\n']), { step: 0, totalSteps: 1 });
    expect(decode).toHaveBeenCalledTimes(2); // the prompts, then "b": the newline ends both rows
    expect(responsesOf(cut.tokens.arraySync(), prompts().prompts)).toEqual([
      [98, EOS],
      [98, EOS],
    ]);
    cut.dispose();
  });

  it('cut what the student generates before it is trained on (on-policy), and only when the dataset has them', async () => {
    const plain = await new OnPolicySampler(models(), { maxNewTokens: 5, sampling: { greedy: true } }).sample(prompts(), { step: 0, totalSteps: 1 });
    expect(responsesOf(plain.tokens.arraySync(), prompts().prompts)).toEqual([ids('b\nccc'), ids('b\nccc')]);
    plain.dispose();
    const cut = await new OnPolicySampler(models(), { maxNewTokens: 5, sampling: { greedy: true } }).sample(prompts(['\n']), { step: 0, totalSteps: 1 });
    expect(responsesOf(cut.tokens.arraySync(), prompts().prompts)).toEqual([
      [98, EOS],
      [98, EOS],
    ]);
    expect(cut.stats['targetTokens']).toBe(4);
    cut.dispose();
  });

  it("cut the teacher's cached SeqKD responses once, before they are cached", async () => {
    const sampler = new SeqKdSampler(models(), { maxNewTokens: 5, sampling: { greedy: true }, cache: true });
    for (let i = 0; i < 2; i++) {
      const batch = await sampler.sample(prompts(['\n']));
      expect(responsesOf(batch.tokens.arraySync(), prompts().prompts)).toEqual([
        [98, EOS],
        [98, EOS],
      ]);
      batch.dispose();
    }
  });

  it('cut SKD samples and keep the teacher distributions of the kept prefix, EOS position included', async () => {
    const m = models();
    const options = {
      topK: 3,
      acceptance: 'top-k' as const,
      topP: 0.9,
      acceptOn: 'raw' as const,
      replace: 'argmax' as const,
      acceptTest: 'draft' as const,
      draftBlock: 2,
      kDecay: false,
      kDecayUnit: 'steps' as const,
      ratio: 1,
      maxNewTokens: 5,
      studentSampling: { greedy: true },
      teacherSampling: {},
      cacheTeacherLogProbs: true,
      maxCachedTeacherFloats: 1e9,
    };
    const batch = await new SkdSampler(m, options).sample(prompts(['\n']), { step: 0, totalSteps: 1 });
    const rows = batch.tokens.arraySync();
    expect(responsesOf(rows, prompts().prompts)).toEqual([
      [98, EOS],
      [98, EOS],
    ]);
    expect(batch.stats['teacherCached']).toBe(1);
    expect(batch.stats['tokensGenerated']).toBe(4); // "b" and the newline in each row: the newline ended them
    // The cached row at the EOS position is the teacher's distribution after "b" (a bigram: its row for "b").
    const cached = batch.teacherLogProbs?.arraySync() as number[][][];
    const P = prompts().prompts[0]?.length as number;
    const afterB = (cached[0] as number[][])[P] as number[];
    expect(afterB[10]).toBeCloseTo(Math.log(0.99), 4);
    expect((cached[0] as number[][])[P - 1]?.[98]).toBeCloseTo(Math.log(0.99), 4);
    batch.dispose();
    m.student.dispose();
    m.teacher?.dispose();
  });

  it("drop the whole batch's cached distributions when a cut row is not its sampled prefix", () => {
    const d = (x: number) => Float32Array.of(x);
    const kept = [
      [d(1), d(2), d(3)],
      [d(4), d(5)],
    ];
    const same = cutSamples(
      [
        [7, 8, 9],
        [1, 2],
      ],
      kept,
      (row) => (row[0] === 7 ? [7, EOS] : undefined),
    );
    expect(same.responses).toEqual([
      [7, EOS],
      [1, 2],
    ]);
    expect(same.teacherLogProbs?.map((row) => row.map((x) => x[0]))).toEqual([
      [1, 2],
      [4, 5],
    ]);
    const reencoded = cutSamples(
      [
        [7, 8, 9],
        [1, 2],
      ],
      kept,
      (row) => (row[0] === 7 ? [6, EOS] : undefined),
    );
    expect(reencoded.responses).toEqual([
      [6, EOS],
      [1, 2],
    ]);
    expect(reencoded.teacherLogProbs).toBeUndefined();
    expect(cutSamples([[7, 8]], undefined, () => [7, EOS]).teacherLogProbs).toBeUndefined();
  });
});
