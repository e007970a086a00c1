import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { forwardKl } from './divergences';
import { CrossEntropy, TokenDivergence } from './token-divergence';
import { countTargetRows, countTargets, tokenLoss } from './token-loss';

beforeAll(() => useBackend('cpu'));

const V = 5;
const kl = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });

function random(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * 2),
    shape,
  );
}

const scalar = (t: tf.Scalar) => {
  const v = t.dataSync()[0] as number;
  t.dispose();
  return v;
};

describe('tokenLoss', () => {
  // Row 0: prompt [1], response [2, 3, 4]. Row 1: prompt [1, 2], response [3], then padding (id 0).
  const tokens = () =>
    tf.tensor2d(
      [
        [1, 2, 3, 4],
        [1, 2, 3, 0],
      ],
      [2, 4],
      'int32',
    );
  const mask = () =>
    tf.tensor2d([
      [0, 1, 1, 1],
      [0, 0, 1, 0],
    ]);

  it("is the token-weighted mean of the rows' losses, whatever the padding", () => {
    const rng = Rng.create(1);
    const s = random(rng, [2, 4, V]) as tf.Tensor3D;
    const t = random(rng, [2, 4, V]) as tf.Tensor3D;
    const batch = scalar(tokenLoss({ divergence: kl, tokens: tokens(), targetMask: mask(), studentLogits: s, teacherLogits: t }));
    const row = (b: number, length: number) =>
      scalar(
        tokenLoss({
          divergence: kl,
          tokens: tf.slice(tokens(), [b, 0], [1, length]) as tf.Tensor2D,
          targetMask: tf.slice(mask(), [b, 0], [1, length]) as tf.Tensor2D,
          studentLogits: tf.slice(s, [b, 0, 0], [1, length, V]) as tf.Tensor3D,
          teacherLogits: tf.slice(t, [b, 0, 0], [1, length, V]) as tf.Tensor3D,
        }),
      );
    expect(Math.abs(batch - (row(0, 4) * 3 + row(1, 3) * 1) / 4)).toBeLessThan(1e-6);
  });

  it('aligns logits at t with token t + 1 (cross-entropy of a perfect predictor is ~0)', () => {
    const ids = [[1, 2, 3, 4]];
    const perfect = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor2d([[2, 3, 4, 0]], [1, 4], 'int32'), V), 50)) as tf.Tensor3D;
    const shifted = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor2d(ids, [1, 4], 'int32'), V), 50)) as tf.Tensor3D;
    const input = { divergence: new CrossEntropy(), tokens: tf.tensor2d(ids, [1, 4], 'int32'), targetMask: tf.tensor2d([[0, 1, 1, 1]]) };
    expect(scalar(tokenLoss({ ...input, studentLogits: perfect }))).toBeLessThan(1e-6);
    expect(scalar(tokenLoss({ ...input, studentLogits: shifted }))).toBeGreaterThan(40);
  });

  it('gives the full-batch gradient when micro-batches are normalised by the global count', async () => {
    const rng = Rng.create(2);
    const s = random(rng, [2, 4, V]) as tf.Tensor3D;
    const t = random(rng, [2, 4, V]) as tf.Tensor3D;
    const total = countTargets(mask());
    expect(total).toBe(4);
    const m = mask();
    expect(await tensorsLeakedBy(() => countTargets(m))).toBe(0);
    m.dispose();
    const full = tf.grad((x: tf.Tensor) =>
      tokenLoss({ divergence: kl, tokens: tokens(), targetMask: mask(), studentLogits: x as tf.Tensor3D, teacherLogits: t }),
    )(s);
    const micro = [0, 1].map((b) =>
      tf.grad((x: tf.Tensor) =>
        tokenLoss({
          divergence: kl,
          tokens: tf.slice(tokens(), [b, 0], [1, 4]) as tf.Tensor2D,
          targetMask: tf.slice(mask(), [b, 0], [1, 4]) as tf.Tensor2D,
          studentLogits: x as tf.Tensor3D,
          teacherLogits: tf.slice(t, [b, 0, 0], [1, 4, V]) as tf.Tensor3D,
          normalizer: total,
        }),
      )(tf.slice(s, [b, 0, 0], [1, 4, V])),
    );
    const stitched = tf.concat(micro, 0);
    expect(maxAbsDiff(full.dataSync(), stitched.dataSync())).toBeLessThan(1e-7);
    // Per-micro-batch normalisation (the common mistake) gives a different gradient here.
    const wrong = tf.grad((x: tf.Tensor) =>
      tokenLoss({
        divergence: kl,
        tokens: tf.slice(tokens(), [1, 0], [1, 4]) as tf.Tensor2D,
        targetMask: tf.slice(mask(), [1, 0], [1, 4]) as tf.Tensor2D,
        studentLogits: x as tf.Tensor3D,
        teacherLogits: tf.slice(t, [1, 0, 0], [1, 4, V]) as tf.Tensor3D,
      }),
    )(tf.slice(s, [1, 0, 0], [1, 4, V]));
    expect(maxAbsDiff(wrong.dataSync(), micro[1]?.dataSync() ?? [])).toBeGreaterThan(1e-4);
  });

  it('returns 0 with a finite zero gradient when there is nothing to learn from (0/0)', () => {
    const s = tf.zeros([1, 3, V]) as tf.Tensor3D;
    const input = { divergence: new CrossEntropy(), tokens: tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), targetMask: tf.zeros([1, 3]) as tf.Tensor2D };
    expect(scalar(tokenLoss({ ...input, studentLogits: s }))).toBe(0);
    const g = tf.grad((x: tf.Tensor) => tokenLoss({ ...input, studentLogits: x as tf.Tensor3D }))(s);
    expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
  });

  it('ignores NaN and -inf garbage in non-target columns (padding, prompt)', () => {
    const rng = Rng.create(3);
    const clean = random(rng, [2, 4, V]) as tf.Tensor3D;
    const teacher = random(rng, [2, 4, V]) as tf.Tensor3D;
    const garbage = tf.tidy(() => {
      const values = clean.arraySync();
      (values[1] as number[][])[3] = new Array(V).fill(Number.NaN); // the padding column of row 1
      (values[1] as number[][])[0] = [-Infinity, 0, -Infinity, 1, 2]; // a prompt column
      return tf.tensor3d(values);
    });
    const loss = (s: tf.Tensor3D) => scalar(tokenLoss({ divergence: kl, tokens: tokens(), targetMask: mask(), studentLogits: s, teacherLogits: teacher }));
    expect(loss(garbage)).toBeCloseTo(loss(clean), 6);
  });

  it("reduction sequences: each row's mean over its own targets, then the mean over rows (short responses weigh as much as long ones)", () => {
    const rng = Rng.create(6);
    const s = random(rng, [2, 4, V]) as tf.Tensor3D;
    const t = random(rng, [2, 4, V]) as tf.Tensor3D;
    const base = { divergence: kl, tokens: tokens(), targetMask: mask(), studentLogits: s, teacherLogits: t };
    // The per-token values, row 0's three targets and row 1's one, summed by hand.
    const rowSum = (m: number[][]) => scalar(tokenLoss({ ...base, targetMask: tf.tensor2d(m), normalizer: 1 }));
    const first = rowSum([
      [0, 1, 1, 1],
      [0, 0, 0, 0],
    ]);
    const second = rowSum([
      [0, 0, 0, 0],
      [0, 0, 1, 0],
    ]);
    expect(scalar(tokenLoss(base))).toBeCloseTo((first + second) / 4, 6);
    expect(scalar(tokenLoss({ ...base, reduction: 'sequences' }))).toBeCloseTo((first / 3 + second / 1) / 2, 6);
    expect(countTargetRows(mask())).toBe(2);
    // A row without targets adds nothing and is not counted; a global row count (micro-batches) divides instead.
    const oneRow = tf.tensor2d([
      [0, 1, 1, 1],
      [0, 0, 0, 0],
    ]);
    expect(countTargetRows(oneRow)).toBe(1);
    expect(scalar(tokenLoss({ ...base, targetMask: oneRow, reduction: 'sequences' }))).toBeCloseTo(first / 3, 6);
    expect(scalar(tokenLoss({ ...base, reduction: 'sequences', normalizer: 4 }))).toBeCloseTo((first / 3 + second) / 4, 6);
  });

  it('scales rows by per-sequence weights without changing the token count', () => {
    const rng = Rng.create(4);
    const s = random(rng, [2, 4, V]) as tf.Tensor3D;
    const t = random(rng, [2, 4, V]) as tf.Tensor3D;
    const base = { divergence: kl, tokens: tokens(), targetMask: mask(), studentLogits: s, teacherLogits: t };
    const onlyFirst = scalar(tokenLoss({ ...base, sequenceWeights: [2, 0] }));
    const firstRowSum = scalar(
      tokenLoss({
        ...base,
        targetMask: tf.tensor2d([
          [0, 1, 1, 1],
          [0, 0, 0, 0],
        ]),
        normalizer: 1,
      }),
    );
    expect(onlyFirst).toBeCloseTo((2 * firstRowSum) / 4, 6);
    expect(() => tokenLoss({ ...base, sequenceWeights: [1] })).toThrow('one weight per row (2), got 1');
  });

  it('keeps numTensors flat over 50 loss-and-gradient steps', async () => {
    const rng = Rng.create(5);
    const s = random(rng, [2, 4, V]) as tf.Tensor3D;
    const t = random(rng, [2, 4, V]) as tf.Tensor3D;
    const tok = tokens();
    const m = mask();
    const leaked = await tensorsLeakedBy(() => {
      for (let i = 0; i < 50; i++) {
        tf.tidy(() => {
          tf.grad((x: tf.Tensor) => tokenLoss({ divergence: kl, tokens: tok, targetMask: m, studentLogits: x as tf.Tensor3D, teacherLogits: t }))(s);
        });
      }
    });
    expect(leaked).toBe(0);
  });
});
