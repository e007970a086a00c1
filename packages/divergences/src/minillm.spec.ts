import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, runReference, useBackend } from '@skd/testing';
import { MiniLlmDivergence, type MiniLlmOptions } from './minillm';
import { chunkedTokenLoss, tokenLoss } from './token-loss';

// Two rows of a 3-token prompt and a 4-token response; the second response is 3 tokens and a pad.
const B = 2;
const T = 7;
const V = 9;
const P = 3;
const ids = [
  [1, 4, 2, 7, 3, 8, 5],
  [2, 2, 6, 1, 5, 3, 0],
];
const targetMask = [
  [0, 0, 0, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 0],
];

/** TRL's view of the same batch: the logits that predict the response, its tokens, and their mask. */
function trlInputs(student: tf.Tensor3D, teacher: tf.Tensor3D) {
  const completion = (x: tf.Tensor3D) => tf.tidy(() => tf.slice(x, [0, P - 1, 0], [B, T - P, V]).arraySync() as number[][][]);
  return { student: completion(student), teacher: completion(teacher), labels: ids.map((row) => row.slice(P)), mask: targetMask.map((row) => row.slice(P)) };
}

describe.each(['cpu', 'wasm'] as const)('MiniLLM on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const logits = (seed: number) => ({
    student: tf.randomNormal([B, T, V], 0, 1.5, 'float32', seed) as tf.Tensor3D,
    teacher: tf.randomNormal([B, T, V], 0, 2, 'float32', seed + 1) as tf.Tensor3D,
  });
  const loss = (options: Partial<MiniLlmOptions>, student: tf.Tensor3D, teacher: { teacherLogits?: tf.Tensor3D; teacherLogProbs?: tf.Tensor3D }) =>
    tf.tidy(
      () =>
        tokenLoss({
          divergence: new MiniLlmDivergence(options),
          tokens: tf.tensor2d(ids, undefined, 'int32'),
          targetMask: tf.tensor2d(targetMask),
          studentLogits: student,
          ...teacher,
        }).dataSync()[0] as number,
    );

  it.each<[string, Partial<MiniLlmOptions>]>([
    ['defaults (gamma 0)', {}],
    ['gamma 0.9, length-normalised', { gamma: 0.9 }],
    ['temperature 2, gamma 0.5', { temperature: 2, gamma: 0.5 }],
  ])("%s: the loss equals TRL's MiniLLMTrainer on the same logits (within 1e-5)", (_name, options) => {
    const { student, teacher } = logits(3);
    const theirs = runReference<{ loss: number; policy: number; singleStep: number }>(['minillm'], {
      ...trlInputs(student, teacher),
      gamma: options.gamma ?? 0,
      lengthNormalization: true,
      temperature: options.temperature ?? 1,
    });
    expect(Math.abs(loss(options, student, { teacherLogits: teacher }) - theirs.loss)).toBeLessThan(1e-5);
    // Each term apart: the policy term alone, then the single-step term alone.
    expect(Math.abs(loss({ ...options, singleStep: false }, student, { teacherLogits: teacher }) - theirs.policy)).toBeLessThan(1e-5);
    expect(Math.abs(loss({ ...options, rklAdvantage: false }, student, { teacherLogits: teacher }) - theirs.singleStep)).toBeLessThan(1e-5);
    // Cached teacher log-probs give the same.
    const cached = tf.logSoftmax(teacher) as tf.Tensor3D;
    expect(Math.abs(loss(options, student, { teacherLogProbs: cached }) - theirs.loss)).toBeLessThan(1e-5);
    [student, teacher, cached].forEach((x) => x.dispose());
  });

  it('without length normalisation the advantage is the discounted sum of later rewards (by hand)', () => {
    const { student, teacher } = logits(5);
    const gamma = 0.8;
    const lq = tf.tidy(() => tf.logSoftmax(student).arraySync() as number[][][]);
    const lp = tf.tidy(() => tf.logSoftmax(teacher).arraySync() as number[][][]);
    let total = 0;
    let count = 0;
    for (let b = 0; b < B; b++) {
      // Column t predicts token t + 1; its mask is the target mask of token t + 1.
      const reward = (t: number) =>
        (targetMask[b]?.[t + 1] ?? 0) > 0 ? (lp[b]?.[t]?.[ids[b]?.[t + 1] as number] as number) - (lq[b]?.[t]?.[ids[b]?.[t + 1] as number] as number) : 0;
      for (let t = 0; t < T - 1; t++) {
        if (!((targetMask[b]?.[t + 1] ?? 0) > 0)) continue;
        let advantage = 0;
        for (let i = t; i < T - 1; i++) advantage += gamma ** (i - t) * reward(i);
        total -= advantage;
        count++;
      }
    }
    expect(loss({ gamma, lengthNormalization: false, singleStep: false }, student, { teacherLogits: teacher })).toBeCloseTo(total / count, 5);
    [student, teacher].forEach((x) => x.dispose());
  });

  it('gradients: the policy term is -A (onehot(y) - q) with the reward held fixed; the single-step term is its exact derivative (finite differences)', () => {
    const { student, teacher } = logits(7);
    const tokens = tf.tensor2d(ids, undefined, 'int32');
    const mask = tf.tensor2d(targetMask);
    const of = (options: Partial<MiniLlmOptions>) => (x: tf.Tensor) =>
      tokenLoss({ divergence: new MiniLlmDivergence(options), tokens, targetMask: mask, studentLogits: x as tf.Tensor3D, teacherLogits: teacher });
    // Policy term, gamma 0: d/ds_t of -A_t log q(y_t) / N with A_t = log p(y_t) - log q(y_t) fixed.
    const policy = tf.grad(of({ singleStep: false }))(student);
    const lq = tf.tidy(() => tf.logSoftmax(student).arraySync() as number[][][]);
    const lp = tf.tidy(() => tf.logSoftmax(teacher).arraySync() as number[][][]);
    const N = 7; // targets: 4 + 3
    const expected = Array.from({ length: B }, (_, b) =>
      Array.from({ length: T }, (_, t) => {
        const y = ids[b]?.[t + 1] as number;
        if (!((targetMask[b]?.[t + 1] ?? 0) > 0)) return Array<number>(V).fill(0);
        const advantage = (lp[b]?.[t]?.[y] as number) - (lq[b]?.[t]?.[y] as number);
        return Array.from({ length: V }, (_, v) => (-advantage * ((v === y ? 1 : 0) - Math.exp(lq[b]?.[t]?.[v] as number))) / N);
      }),
    ).flat(2);
    expect(maxAbsDiff(Array.from(policy.dataSync()), expected)).toBeLessThan(1e-5);
    // TRL's way, the reward keeping its gradient: + (onehot(y) - q) / N more at each target.
    const through = tf.grad(of({ singleStep: false, rewardGradient: 'through' }))(student);
    const extra = Array.from({ length: B }, (_, b) =>
      Array.from({ length: T }, (_, t) => {
        const y = ids[b]?.[t + 1] as number;
        if (!((targetMask[b]?.[t + 1] ?? 0) > 0)) return Array<number>(V).fill(0);
        return Array.from({ length: V }, (_, v) => ((v === y ? 1 : 0) - Math.exp(lq[b]?.[t]?.[v] as number)) / N);
      }),
    ).flat(2);
    expect(
      maxAbsDiff(
        Array.from(through.dataSync()),
        expected.map((g, i) => g + (extra[i] as number)),
      ),
    ).toBeLessThan(1e-5);
    expect(
      Math.abs(tf.tidy(() => of({ rewardGradient: 'through' })(student).dataSync()[0] as number) - tf.tidy(() => of({})(student).dataSync()[0] as number)),
    ).toBeLessThan(1e-6);
    through.dispose();
    // Single-step term: its value is the function, so finite differences check its gradient.
    const single = of({ rklAdvantage: false });
    const grad = tf.grad(single)(student);
    const base = student.dataSync();
    for (const k of [3 * V + 1, 4 * V + 5, (T + 3) * V + 2, (T + 5) * V + 8]) {
      const h = 1e-2;
      const [plus, minus] = [Float32Array.from(base), Float32Array.from(base)];
      plus[k] = (plus[k] as number) + h;
      minus[k] = (minus[k] as number) - h;
      const f = (values: Float32Array) => tf.tidy(() => single(tf.tensor3d(values, [B, T, V])).dataSync()[0] as number);
      expect(Math.abs((f(plus) - f(minus)) / (2 * h) - (grad.dataSync()[k] as number))).toBeLessThan(1e-3);
    }
    expect(Array.from(grad.dataSync()).some((g) => Math.abs(g) > 1e-4)).toBe(true);
    [policy, grad, student, teacher, tokens, mask].forEach((x) => x.dispose());
  });

  it('refuses what it cannot compute, in one line', () => {
    const { student, teacher } = logits(9);
    const input = {
      divergence: new MiniLlmDivergence({ gamma: 0.9 }),
      tokens: tf.tensor2d(ids, undefined, 'int32'),
      targetMask: tf.tensor2d(targetMask),
      studentFeatures: student,
      outputLayer: { project: (h: tf.Tensor2D) => h },
      teacherLogits: teacher,
      chunk: 2,
    };
    expect(() => chunkedTokenLoss({ ...input, studentFeatures: tf.randomNormal([B, T, V]) as tf.Tensor3D })).toThrow(
      "minillm with gamma > 0 sums each response's later rewards, so it needs whole sequences",
    );
    expect(() => new MiniLlmDivergence({ rklAdvantage: false, singleStep: false })).toThrow('rklAdvantage and singleStep are both off');
    expect(() => new MiniLlmDivergence().perToken({ studentLogits: student, targets: input.tokens })).toThrow('needs teacher logits');
    [student, teacher, input.tokens, input.targetMask].forEach((x) => x.dispose());
  });
});
