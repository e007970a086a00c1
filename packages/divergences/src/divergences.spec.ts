import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { forwardKl, generalizedJsd, reverseKl, skewKl, skewReverseKl, totalVariation, type LogProbDivergence } from './divergences';
import { CrossEntropy, TokenDivergence } from './token-divergence';

beforeAll(() => useBackend('cpu'));

/** Logits whose softmax is exactly `probs` (log-probabilities are valid logits). */
const logits3 = (rows: number[][]) => tf.tensor3d([rows.map((r) => r.map(Math.log))]); // (1, T, V)

const divergence = (name: string, fn: LogProbDivergence, extra: object = {}) => new TokenDivergence({ name, fn, ...extra });

const values = (d: TokenDivergence | CrossEntropy, teacher: tf.Tensor3D, student: tf.Tensor3D, targets?: tf.Tensor2D) =>
  tf.tidy(() => Array.from(d.perToken({ teacherLogits: teacher, studentLogits: student, targets }).dataSync()));

function randomLogits(rng: Rng, shape: [number, number, number], scale = 3): tf.Tensor3D {
  const n = shape[0] * shape[1] * shape[2];
  return tf.tensor3d(
    Array.from({ length: n }, () => rng.normal() * scale),
    shape,
  );
}

const ALL: [string, LogProbDivergence][] = [
  ['forward-kl', forwardKl],
  ['reverse-kl', reverseKl],
  ['jsd(0.5)', generalizedJsd(0.5)],
  ['jsd(0.1)', generalizedJsd(0.1)],
  ['tvd', totalVariation],
  ['skew-kl(0.1)', skewKl(0.1)],
  ['skew-reverse-kl(0.1)', skewReverseKl(0.1)],
];

describe('hand-computed values (P = [0.7, 0.2, 0.1], Q = [0.4, 0.4, 0.2])', () => {
  // forward KL = 0.7 ln(0.7/0.4) + 0.2 ln(0.2/0.4) + 0.1 ln(0.1/0.2); the others likewise by their formulas.
  const expected: Record<string, number> = {
    'forward-kl': 0.1837868973868122,
    'reverse-kl': 0.19204199316179812,
    'jsd(0.5)': 0.046200829181513414,
    'jsd(0.1)': 0.016517983060345753,
    tvd: 0.3,
    'skew-kl(0.1)': 0.14855042259733903,
    'skew-reverse-kl(0.1)': 0.15237693434256033,
  };
  it.each(ALL)('%s matches to 1e-6', (name, fn) => {
    const teacher = logits3([[0.7, 0.2, 0.1]]);
    const student = logits3([[0.4, 0.4, 0.2]]);
    expect(Math.abs((values(divergence(name, fn), teacher, student)[0] as number) - (expected[name] as number))).toBeLessThan(1e-6);
    tf.dispose([teacher, student]);
  });

  it('cross-entropy is -log Q(target) = -ln 0.4', () => {
    const student = logits3([[0.4, 0.4, 0.2]]);
    const ce = values(new CrossEntropy(), student, student, tf.tensor2d([[1]], [1, 1], 'int32'));
    expect(Math.abs((ce[0] as number) - 0.916290731874155)).toBeLessThan(1e-6);
    student.dispose();
  });
});

describe('properties on random logits (B=3, T=4, V=7)', () => {
  const rng = Rng.create(1);
  let teacher: tf.Tensor3D;
  let student: tf.Tensor3D;
  beforeAll(() => {
    teacher = randomLogits(rng, [3, 4, 7]);
    student = randomLogits(rng, [3, 4, 7]);
  });
  afterAll(() => tf.dispose([teacher, student]));

  it.each(ALL)('%s is exactly 0 for identical inputs and >= 0 otherwise', (name, fn) => {
    expect(values(divergence(name, fn), teacher, teacher).every((v) => v === 0)).toBe(true);
    expect(values(divergence(name, fn), teacher, student).every((v) => v > 0)).toBe(true);
  });

  it('JSD is symmetric at beta 0.5 and not at beta 0.3', () => {
    const sym = divergence('jsd', generalizedJsd(0.5));
    expect(maxAbsDiff(values(sym, teacher, student), values(sym, student, teacher))).toBeLessThan(1e-6);
    const skew = divergence('jsd', generalizedJsd(0.3));
    expect(maxAbsDiff(values(skew, teacher, student), values(skew, student, teacher))).toBeGreaterThan(1e-3);
  });

  it('JSD endpoints and skew alpha 0 equal the KLs exactly', () => {
    const fkl = values(divergence('f', forwardKl), teacher, student);
    const rkl = values(divergence('r', reverseKl), teacher, student);
    expect(values(divergence('j0', generalizedJsd(0)), teacher, student)).toEqual(fkl);
    expect(values(divergence('j1', generalizedJsd(1)), teacher, student)).toEqual(rkl);
    expect(values(divergence('s0', skewKl(0)), teacher, student)).toEqual(fkl);
    expect(values(divergence('sr0', skewReverseKl(0)), teacher, student)).toEqual(rkl);
    // Near the endpoints the interior formula is continuous, not equal: the special case matters.
    expect(maxAbsDiff(values(divergence('j', generalizedJsd(1e-3)), teacher, student), fkl)).toBeGreaterThan(1e-2);
  });

  it('TVD is at most 1, and 1 for disjoint supports', () => {
    expect(values(divergence('tvd', totalVariation), teacher, student).every((v) => v <= 1)).toBe(true);
    const a = tf.tensor3d([[[0, -Infinity]]]);
    const b = tf.tensor3d([[[-Infinity, 0]]]);
    expect(values(divergence('tvd', totalVariation), a, b)[0]).toBeCloseTo(1, 6);
    tf.dispose([a, b]);
  });

  it.each(ALL)('%s: sparse top-k with k = V equals the dense value (1e-5)', (name, fn) => {
    const dense = values(divergence(name, fn), teacher, student);
    const sparse = values(divergence(name, fn, { sparseTopK: 7 }), teacher, student);
    expect(maxAbsDiff(dense, sparse)).toBeLessThan(1e-5);
  });

  it('sparse top-k with k < V approximates and changes the value (the option is used)', () => {
    const dense = values(divergence('f', forwardKl), teacher, student);
    const sparse = values(divergence('f', forwardKl, { sparseTopK: 2 }), teacher, student);
    expect(maxAbsDiff(dense, sparse)).toBeGreaterThan(1e-4);
    expect(sparse.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
  });

  it('temperature divides both logit sets, and tau^2 scaling multiplies', () => {
    const tau = 2;
    const scaledT = tf.div(teacher, tau) as tf.Tensor3D;
    const scaledS = tf.div(student, tau) as tf.Tensor3D;
    const byHand = values(divergence('f', forwardKl), scaledT, scaledS);
    const withTau = values(divergence('f', forwardKl, { temperature: tau }), teacher, student);
    expect(maxAbsDiff(byHand, withTau)).toBeLessThan(1e-6);
    const squared = values(divergence('f', forwardKl, { temperature: tau, scaleByTemperatureSquared: true }), teacher, student);
    expect(
      maxAbsDiff(
        squared,
        withTau.map((v) => v * 4),
      ),
    ).toBeLessThan(1e-5);
    tf.dispose([scaledT, scaledS]);
  });

  it('cached teacher log-probs give the same values as teacher logits, at any temperature', () => {
    for (const temperature of [1, 0.7]) {
      const d = divergence('f', forwardKl, { temperature });
      const fromLogits = values(d, teacher, student);
      const fromCache = tf.tidy(() => Array.from(d.perToken({ teacherLogProbs: tf.logSoftmax(teacher) as tf.Tensor3D, studentLogits: student }).dataSync()));
      expect(maxAbsDiff(fromLogits, fromCache)).toBeLessThan(1e-5);
    }
  });
});

describe('numerical safety', () => {
  it.each(ALL)('%s stays finite with -inf logits (masked vocabulary) and +-1e4 logits', (name, fn) => {
    const masked = tf.tensor3d([
      [
        [0, 1, -Infinity, 2],
        [-Infinity, 0, 0, -Infinity],
      ],
    ]);
    const masked2 = tf.tensor3d([
      [
        [1, 0, -Infinity, 0],
        [-Infinity, 3, -1, -Infinity],
      ],
    ]);
    const extreme = tf.tensor3d([
      [
        [1e4, -1e4, 0, 5],
        [-1e4, 1e4, 1e4, 0],
      ],
    ]);
    const d = divergence(name, fn);
    for (const [a, b] of [
      [masked, masked2],
      [extreme, masked2],
      [masked, masked],
    ] as const) {
      expect(values(d, a, b).every(Number.isFinite)).toBe(true);
    }
    const grads = tf.tidy(() =>
      Array.from(
        tf
          .grad((s: tf.Tensor) => tf.sum(d.perToken({ teacherLogits: masked, studentLogits: s as tf.Tensor3D })))(masked2)
          .dataSync(),
      ),
    );
    expect(grads.every(Number.isFinite)).toBe(true);
    tf.dispose([masked, masked2, extreme]);
  });
});

describe('gradients match central finite differences (student logits; eps 1e-2, tolerance 1e-3 + 1% rel)', () => {
  const rng = Rng.create(7);
  const cases: [string, TokenDivergence | CrossEntropy][] = [
    ...ALL.map(([name, fn]) => [name, divergence(name, fn)] as [string, TokenDivergence]),
    ['sparse forward-kl (k=2)', divergence('sparse', forwardKl, { sparseTopK: 2 })],
    ['forward-kl at temperature 2', divergence('t', forwardKl, { temperature: 2 })],
    ['cross-entropy', new CrossEntropy()],
  ];
  it.each(cases)('%s', (_name, d) => {
    const shape: [number, number, number] = [2, 2, 5];
    const teacher = randomLogits(rng, shape, 1.5);
    const student = randomLogits(rng, shape, 1.5);
    const targets = tf.tensor2d(
      [
        [0, 3],
        [4, 1],
      ],
      [2, 2],
      'int32',
    );
    const weights = tf.tensor2d([
      [0.3, 1.1],
      [0.7, 0.5],
    ]);
    const f = (s: tf.Tensor) => tf.sum(tf.mul(d.perToken({ teacherLogits: teacher, studentLogits: s as tf.Tensor3D, targets }), weights));
    const analytic = tf.tidy(() => Array.from(tf.grad(f)(student).dataSync()));
    const base = Array.from(student.dataSync());
    const eps = 1e-2;
    const at = (x: number[]) => tf.tidy(() => f(tf.tensor3d(x, shape)).dataSync()[0] as number);
    base.forEach((x, i) => {
      const plus = [...base];
      const minus = [...base];
      plus[i] = x + eps;
      minus[i] = x - eps;
      const numeric = (at(plus) - at(minus)) / (2 * eps);
      expect(Math.abs((analytic[i] as number) - numeric)).toBeLessThan(1e-3 + 0.01 * Math.abs(numeric));
    });
    tf.dispose([teacher, student, targets, weights]);
  });
});

describe('closed-form student gradients (what large vocabularies run on) equal autodiff (1e-5)', () => {
  const rng = Rng.create(11);
  it.each(ALL)('%s', (_name, fn) => {
    const teacher = randomLogits(rng, [2, 3, 6]);
    const student = randomLogits(rng, [2, 3, 6]);
    const masked = tf.tidy(() => tf.where(tf.tensor3d([[[1, 1, 1, 1, 0, 0]]], undefined, 'bool'), teacher, tf.fill([2, 3, 6], -Infinity)) as tf.Tensor3D);
    const maskedStudent = tf.tidy(
      () => tf.where(tf.tensor3d([[[1, 1, 1, 1, 0, 0]]], undefined, 'bool'), student, tf.fill([2, 3, 6], -Infinity)) as tf.Tensor3D,
    );
    for (const [t, s] of [
      [teacher, student],
      [masked, maskedStudent],
    ] as const) {
      const weights = tf.tensor2d([
        [1, 2, 3],
        [0.5, 0.25, 1],
      ]);
      const closed = tf.tidy(() =>
        Array.from(
          tf
            .grad((x: tf.Tensor) => tf.sum(tf.mul(divergence('c', fn).perToken({ teacherLogits: t, studentLogits: x as tf.Tensor3D }), weights)))(s)
            .dataSync(),
        ),
      );
      const auto = tf.tidy(() =>
        Array.from(
          tf
            .grad((x: tf.Tensor) => tf.sum(tf.mul(fn(tf.logSoftmax(t), tf.logSoftmax(x)), weights)))(s)
            .dataSync(),
        ),
      );
      expect(closed.every(Number.isFinite)).toBe(true);
      expect(
        maxAbsDiff(
          closed,
          auto.map((v) => (Number.isFinite(v) ? v : 0)),
        ),
      ).toBeLessThan(1e-5);
      weights.dispose();
    }
    tf.dispose([teacher, student, masked, maskedStudent]);
  });
});

describe('each gradient form equals autodiff where only the teacher has no mass (1e-5)', () => {
  // studentGrad (the closed form) and fromLogits (the fused op) are separate code paths from the value
  // that autodiff differentiates; a teacher entry of probability exactly 0 beside student mass is the
  // case where a ratio p / m must be 0, not exp(0).
  const rng = Rng.create(13);
  // Reverse KL is infinite there (the student puts mass where the teacher has none), so it is left out.
  it.each(ALL.filter(([name]) => name !== 'reverse-kl'))('%s', (_name, fn) => {
    const logP = tf.tidy(() =>
      tf.logSoftmax(tf.where(tf.tensor3d([[[1, 1, 1, 0, 1, 1]]], undefined, 'bool'), randomLogits(rng, [2, 3, 6]), tf.fill([2, 3, 6], -Infinity))),
    );
    const student = randomLogits(rng, [2, 3, 6]);
    const weights = tf.tensor2d([
      [1, 2, 3],
      [0.5, 0.25, 1],
    ]);
    const weighted = (g: tf.Tensor) => tf.mul(g, tf.expandDims(weights, -1));
    const auto = tf.tidy(() =>
      Array.from(
        tf
          .grad((x: tf.Tensor) => tf.sum(tf.mul(fn(logP, tf.logSoftmax(x)), weights)))(student)
          .dataSync(),
      ),
    );
    expect(auto.every(Number.isFinite)).toBe(true);
    if (fn.studentGrad) {
      const closed = tf.tidy(() => Array.from(weighted((fn.studentGrad as NonNullable<typeof fn.studentGrad>)(logP, tf.logSoftmax(student))).dataSync()));
      expect(maxAbsDiff(closed, auto)).toBeLessThan(1e-5);
    }
    if (fn.fromLogits) {
      const fused = tf.tidy(() =>
        Array.from(
          tf
            .grad((x: tf.Tensor) => tf.sum(tf.mul((fn.fromLogits as NonNullable<typeof fn.fromLogits>)(logP, x), weights)))(student)
            .dataSync(),
        ),
      );
      expect(maxAbsDiff(fused, auto)).toBeLessThan(1e-5);
    }
    tf.dispose([logP, student, weights]);
  });
});

describe('construction errors', () => {
  it('quote the bad value', () => {
    expect(() => generalizedJsd(1.5)).toThrow('jsd beta must be in [0, 1], got 1.5');
    expect(() => skewKl(1)).toThrow('skew alpha must be in [0, 1)');
    expect(() => divergence('f', forwardKl, { temperature: 0 })).toThrow('temperature must be > 0, got 0');
    expect(() => divergence('f', forwardKl, { sparseTopK: 0 })).toThrow('sparseTopK must be an integer >= 1, got 0');
  });

  it('name a missing teacher and mismatched shapes', () => {
    const s = tf.zeros([1, 2, 3]) as tf.Tensor3D;
    const t = tf.zeros([1, 2, 4]) as tf.Tensor3D;
    expect(() => divergence('forward-kl', forwardKl).perToken({ studentLogits: s })).toThrow('needs teacher logits');
    expect(() => divergence('f', forwardKl).perToken({ studentLogits: s, teacherLogits: t })).toThrow(
      'teacher logits must have shape [1, 2, 3] (like the student logits), got [1, 2, 4]',
    );
    tf.dispose([s, t]);
  });

  it('leak nothing over repeated use', async () => {
    const rng = Rng.create(3);
    const t = randomLogits(rng, [2, 3, 5]);
    const s = randomLogits(rng, [2, 3, 5]);
    const leaked = await tensorsLeakedBy(() => {
      for (const [name, fn] of ALL) {
        for (let i = 0; i < 5; i++) values(divergence(name, fn, { sparseTopK: 3 }), t, s);
      }
    });
    expect(leaked).toBe(0);
    tf.dispose([t, s]);
  });
});
