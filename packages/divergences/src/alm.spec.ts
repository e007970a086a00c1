import * as tf from '@tensorflow/tfjs-core';
import { tensorsLeakedBy, useBackend } from '@skd/testing';
import type { AlignedResponse, ByteSpan, Divergence } from '@skd/core';
import { AlmDivergence, almResponseLoss, binarisedKl, chunkLogLikelihoods } from './alm';
import { divergenceEntries } from './entries';

/** Float64 log-softmax of one row, for the hand computations. */
const logSoftmax = (row: number[]) => {
  const max = Math.max(...row);
  const log = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)) + max;
  return row.map((x) => x - log);
};
/** KL(Bern(p) || Bern(q)) in float64. */
const bernoulliKl = (p: number, q: number) => p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));

// One response tokenised two ways: the student's tokens cover bytes [0, 2), [2, 3), [3, 5); the
// teacher's [0, 1), [1, 2), [2, 3), [3, 4), [4, 5). Chunks: student [0] ~ teacher [0, 1]; [1] ~ [2]; [2] ~ [3, 4].
const studentRows = [
  [0.2, 1.5, -0.3, 0.8],
  [1.1, -0.4, 0.6, 0.0],
  [-0.7, 0.3, 2.0, 0.4],
];
const teacherRows = [
  [0.5, -0.2, 1.3],
  [2.2, 0.1, -1.0],
  [0.0, 0.9, 0.4],
  [-0.3, 1.7, 0.2],
  [1.0, 1.0, -0.5],
];
const studentTokens = [1, 2, 2];
const teacherTokens = [2, 0, 1, 1, 0];
const spans = (ends: number[]): ByteSpan[] => ends.map((end, i) => [i === 0 ? 0 : (ends[i - 1] as number), end]);
const response = (): AlignedResponse => ({
  studentLogits: tf.tensor2d(studentRows),
  teacherLogits: tf.tensor2d(teacherRows),
  studentTokens,
  teacherTokens,
  studentSpans: spans([2, 3, 5]),
  teacherSpans: spans([1, 2, 3, 4, 5]),
  ended: false,
});
const logProb = (rows: number[][], tokens: number[], k: number) => logSoftmax(rows[k] as number[])[tokens[k] as number] as number;
type Chunks = readonly (readonly [readonly number[], readonly number[]])[];
const chunks: Chunks = [
  [[0], [0, 1]],
  [[1], [2]],
  [[2], [3, 4]],
];
/** The response's value by hand: each chunk's likelihoods by the chain rule, their binarised KLs' mean. */
const byHand = (of: Chunks = chunks) =>
  of
    .map(([s, t]) => {
      const q = Math.exp(s.reduce((sum, k) => sum + logProb(studentRows, studentTokens, k), 0));
      const p = Math.exp(t.reduce((sum, k) => sum + logProb(teacherRows, teacherTokens, k), 0));
      return bernoulliKl(p, q);
    })
    .reduce((a, b) => a + b, 0) / of.length;

const create = (options: object): Divergence => {
  const entry = divergenceEntries.find((e) => e.kind === 'alm');
  return entry?.create(entry.options.parse(options), { baseDir: '.', rng: undefined as never }) as Divergence;
};

describe.each(['cpu', 'wasm'] as const)('chunk likelihood matching (alm) on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('the binarised KL of two likelihoods, by hand, and stable at both ends', () => {
    const cases: [number, number, number][] = [
      [Math.log(0.5), Math.log(0.25), 0.5 * Math.log(2) + 0.5 * Math.log(0.5 / 0.75)],
      [Math.log(0.3), Math.log(0.3), 0],
      [0, Math.log(0.25), -Math.log(0.25)], // a certain teacher: the student's cross-entropy on the chunk
      [-50, -1, -Math.log(1 - Math.exp(-1))], // an impossible chunk for the teacher: -log(1 - q)
      [Math.log(0.9), -1e-9, 0.9 * Math.log(0.9) + 0.1 * (Math.log(0.1) - Math.log(1e-7))], // 1 - q floored at 1e-7
    ];
    const values = tf.tidy(() => binarisedKl(tf.tensor1d(cases.map(([p]) => p)), tf.tensor1d(cases.map(([, q]) => q))).arraySync()) as number[];
    values.forEach((v, i) => expect(v).toBeCloseTo((cases[i] as number[])[2] as number, 5));
  });

  it("sums each chunk's log-probabilities over its own tokens", () => {
    const got = tf.tidy(() => chunkLogLikelihoods(tf.tensor2d(teacherRows), teacherTokens, [[0, 1], [2], [3, 4]]).arraySync());
    const expected = [[0, 1], [2], [3, 4]].map((g) => g.reduce((s, k) => s + logProb(teacherRows, teacherTokens, k), 0));
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5));
    expect(() => chunkLogLikelihoods(tf.tensor2d(teacherRows), teacherTokens, [[0, 5]])).toThrow(/outside 0..4/);
  });

  it("one response's value: the mean over byte-aligned chunks of the binarised KL, by hand", () => {
    const r = response();
    const { loss, chunks: count } = almResponseLoss(r);
    expect(count).toBe(3);
    expect(loss.dataSync()[0]).toBeCloseTo(byHand(), 5);
    // A student whose text stops a byte before the teacher's: the teacher's last token has no student
    // side and is dropped; the student's last token now pairs with the teacher's [3, 4) alone.
    const shorter = almResponseLoss({ ...r, studentSpans: spans([2, 3, 4]) });
    expect(shorter.chunks).toBe(3);
    expect(shorter.loss.dataSync()[0]).toBeCloseTo(byHand([...chunks.slice(0, 2), [[2], [3]]]), 5);
    tf.dispose([loss, shorter.loss, r.studentLogits, r.teacherLogits]);
  });

  it("its gradient in the student's logits matches central finite differences, and no teacher gradient", () => {
    const r = response();
    const f = (studentLogits: tf.Tensor2D, teacherLogits = r.teacherLogits) => almResponseLoss({ ...r, studentLogits, teacherLogits }).loss;
    const grad = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) => f(x as tf.Tensor2D))(r.studentLogits)
        .dataSync(),
    );
    const base = r.studentLogits.dataSync();
    for (let k = 0; k < base.length; k++) {
      const h = 1e-2;
      const [plus, minus] = [Float32Array.from(base), Float32Array.from(base)];
      plus[k] = (plus[k] as number) + h;
      minus[k] = (minus[k] as number) - h;
      const at = (values: Float32Array) => tf.tidy(() => f(tf.tensor2d(values, [3, 4])).dataSync()[0] as number);
      const numeric = (at(plus) - at(minus)) / (2 * h);
      expect(Math.abs(numeric - (grad[k] as number))).toBeLessThan(1e-3 + 0.01 * Math.abs(numeric));
    }
    expect(Array.from(grad).some((g) => Math.abs(g) > 1e-2)).toBe(true);
    const teacherGrad = tf.tidy(() => tf.max(tf.abs(tf.grad((x: tf.Tensor) => f(r.studentLogits, x as tf.Tensor2D))(r.teacherLogits))).dataSync()[0]);
    expect(teacherGrad).toBe(0);
    tf.dispose([r.studentLogits, r.teacherLogits]);
  });

  it('the registry entry: end tokens kept as a last chunk by default, or skipped; cross-entropy added per response', () => {
    const r = response();
    // Both sides end with an end token covering no bytes.
    const ended: AlignedResponse = {
      studentLogits: tf.concat([r.studentLogits, tf.tensor2d([[0.1, 0.2, 0.3, 1.4]])]) as tf.Tensor2D,
      teacherLogits: tf.concat([r.teacherLogits, tf.tensor2d([[0.3, 0.1, 0.9]])]) as tf.Tensor2D,
      studentTokens: [...studentTokens, 3],
      teacherTokens: [...teacherTokens, 2],
      studentSpans: [...spans([2, 3, 5]), [5, 5]],
      teacherSpans: [...spans([1, 2, 3, 4, 5]), [5, 5]],
      ended: true,
    };
    const vocabularies = () => ({ student: new Map<string, number>(), teacher: new Map<string, number>() });
    const kept = create({}).aligned?.([ended], vocabularies);
    expect(kept?.groups).toEqual([4]);
    const endKl = bernoulliKl(Math.exp(logSoftmax([0.3, 0.1, 0.9])[2] as number), Math.exp(logSoftmax([0.1, 0.2, 0.3, 1.4])[3] as number));
    expect(kept?.values.dataSync()[0]).toBeCloseTo((byHand() * 3 + endKl) / 4, 5);
    const skipped = create({ eos: 'skip' }).aligned?.([ended], vocabularies);
    expect(skipped?.groups).toEqual([3]);
    expect(skipped?.values.dataSync()[0]).toBeCloseTo(byHand(), 5);
    const withCe = create({ eos: 'skip', crossEntropyWeight: 0.5 }).aligned?.([ended], vocabularies);
    const ce =
      -[0, 1, 2, 3].reduce((s, k) => s + (logSoftmax([...studentRows, [0.1, 0.2, 0.3, 1.4]][k] as number[])[[...studentTokens, 3][k] as number] as number), 0) /
      4;
    expect(withCe?.values.dataSync()[0]).toBeCloseTo(byHand() + 0.5 * ce, 5);
    expect(() => create({ crossEntropyWeight: -1 })).toThrow();
    tf.dispose([kept?.values, skipped?.values, withCe?.values, ended.studentLogits, ended.teacherLogits, r.studentLogits, r.teacherLogits]);
  });

  it("a temperature takes both chunk likelihoods to the power 1/T; T times the value tends to the log-likelihoods' limit form", () => {
    const r = response();
    const vocabularies = () => ({ student: new Map<string, number>(), teacher: new Map<string, number>() });
    const logLikelihoods = chunks.map(([s, t]) => [
      t.reduce((sum, k) => sum + logProb(teacherRows, teacherTokens, k), 0),
      s.reduce((sum, k) => sum + logProb(studentRows, studentTokens, k), 0),
    ]);
    const at = (T: number) =>
      logLikelihoods.map(([a, b]) => bernoulliKl(Math.exp((a as number) / T), Math.exp((b as number) / T))).reduce((x, y) => x + y, 0) / 3;
    const hot = create({ temperature: 4 }).aligned?.([r], vocabularies);
    expect(hot?.values.dataSync()[0]).toBeCloseTo(at(4), 6);
    expect(at(4)).not.toBeCloseTo(byHand(), 3); // the option changes the value
    // As T grows, T KL(Bern(p^(1/T)) || Bern(q^(1/T))) -> (a - b) + a log(b / a), a = log p, b = log q.
    const limit =
      logLikelihoods.map(([a, b]) => (a as number) - (b as number) + (a as number) * Math.log((b as number) / (a as number))).reduce((x, y) => x + y, 0) / 3;
    const cold = create({ temperature: 1000 }).aligned?.([r], vocabularies);
    expect((cold?.values.dataSync()[0] as number) * 1000).toBeCloseTo(limit, 2);
    // One tokenizer: the same power on each token's probability.
    const logits = tf.tensor3d([studentRows.slice(0, 2)]);
    const teacher = tf.tensor3d([teacherRows.slice(0, 2).map((row) => [...row, 0.25])]);
    const targets = tf.tensor2d([[1, 2]], [1, 2], 'int32');
    const perToken = create({ temperature: 4 }).perToken({ studentLogits: logits, teacherLogits: teacher, targets });
    const expected = [0, 1].map((k) =>
      bernoulliKl(
        Math.exp((logSoftmax([...(teacherRows[k] as number[]), 0.25])[[1, 2][k] as number] as number) / 4),
        Math.exp((logSoftmax(studentRows[k] as number[])[[1, 2][k] as number] as number) / 4),
      ),
    );
    const got = perToken.dataSync();
    expected.forEach((e, k) => expect(got[k]).toBeCloseTo(e, 6));
    expect(() => create({ temperature: 0 })).toThrow();
    expect(() => new AlmDivergence({ eos: 'keep', temperature: Number.NaN })).toThrow('alm: temperature must be a positive number');
    tf.dispose([hot?.values, cold?.values, perToken, logits, teacher, targets, r.studentLogits, r.teacherLogits]);
  });

  it('with one tokenizer each token is its own chunk: perToken equals the aligned value of one-token chunks', async () => {
    const [B, T, V] = [2, 3, 4];
    const s = tf.randomNormal([B, T, V], 0, 1.5, 'float32', 3) as tf.Tensor3D;
    const t = tf.randomNormal([B, T, V], 0, 1.5, 'float32', 4) as tf.Tensor3D;
    const targets = tf.tensor2d(
      [
        [1, 3, 0],
        [2, 2, 1],
      ],
      [B, T],
      'int32',
    );
    const alm = new AlmDivergence({ eos: 'keep' });
    const perToken = alm.perToken({ studentLogits: s, teacherLogits: t, targets }).arraySync();
    const rows = (x: tf.Tensor3D, b: number) => tf.squeeze(tf.slice(x, [b, 0, 0], [1, T, V]), [0]) as tf.Tensor2D;
    for (let b = 0; b < B; b++) {
      const tokens = targets.arraySync()[b] as number[];
      const oneEach = spans([1, 2, 3]);
      const value = tf.tidy(
        () =>
          alm
            .aligned([
              {
                studentLogits: rows(s, b),
                teacherLogits: rows(t, b),
                studentTokens: tokens,
                teacherTokens: tokens,
                studentSpans: oneEach,
                teacherSpans: oneEach,
                ended: false,
              },
            ])
            .values.dataSync()[0],
      );
      const mean = (perToken[b] as number[]).reduce((x, y) => x + y, 0) / T;
      expect(value).toBeCloseTo(mean, 5);
    }
    expect(() => alm.perToken({ studentLogits: s, teacherLogits: t })).toThrow(/targets/);
    expect(() => alm.perToken({ studentLogits: s, targets })).toThrow(/teacher/);
    expect(
      await tensorsLeakedBy(() => {
        alm.perToken({ studentLogits: s, teacherLogits: t, targets }).dispose();
        const r = response();
        alm.aligned([r]).values.dispose();
        tf.dispose([r.studentLogits, r.teacherLogits]);
      }),
    ).toBe(0);
    tf.dispose([s, t, targets]);
  });
});
