import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, useBackend } from '@skd/testing';
import { forwardKl } from './divergences';
import { TaidDivergence } from './taid';
import { TokenDivergence } from './token-divergence';

describe.each(['cpu', 'wasm'] as const)('TAID on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('by hand: a uniform student, a teacher favouring token 0 by ln 2, t = 0.5', () => {
    const taid = new TaidDivergence({ tStart: 0.5 });
    const student = tf.tensor3d([[[0, 0, 0]]]);
    const teacher = tf.tensor3d([[[Math.log(2), 0, 0]]]);
    // p_t = softmax(0.5 (ln 2, 0, 0)) = (sqrt 2, 1, 1) / (2 + sqrt 2); q = 1/3 each.
    const p = [Math.SQRT2, 1, 1].map((x) => x / (2 + Math.SQRT2));
    const kl = p.reduce((sum, x) => sum + x * Math.log(3 * x), 0); // 0.0142206
    expect(taid.perToken({ studentLogits: student, teacherLogits: teacher }).dataSync()[0]).toBeCloseTo(kl, 6);
    const ce = new TaidDivergence({ tStart: 0.5, objective: 'cross-entropy' });
    expect(ce.perToken({ studentLogits: student, teacherLogits: teacher }).dataSync()[0]).toBeCloseTo(Math.log(3), 6);
    [student, teacher].forEach((x) => x.dispose());
  });

  const logits = () => ({
    student: tf.randomNormal([2, 3, 7], 0, 1.5, 'float32', 1) as tf.Tensor3D,
    teacher: tf.randomNormal([2, 3, 7], 0, 2, 'float32', 2) as tf.Tensor3D,
  });

  it("values: KL(p_t || q) with p_t from the logits interpolated; the teacher's log-probs give the same; t = 1 is forward KL to the teacher", () => {
    const { student, teacher } = logits();
    const taid = new TaidDivergence({ tStart: 0.3 });
    const values = Array.from(taid.perToken({ studentLogits: student, teacherLogits: teacher }).dataSync());
    const s = student.arraySync();
    const l = teacher.arraySync();
    const softmax = (row: number[]) => {
      const m = Math.max(...row);
      const e = row.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / z);
    };
    const expected = s.flatMap((rows, b) =>
      rows.map((row, i) => {
        const p = softmax(row.map((x, v) => 0.7 * x + 0.3 * (l[b]?.[i]?.[v] as number)));
        const q = softmax(row);
        return p.reduce((sum, pv, v) => sum + pv * Math.log(pv / (q[v] as number)), 0);
      }),
    );
    expect(maxAbsDiff(values, expected)).toBeLessThan(1e-5);
    const fromLogProbs = tf.tidy(() =>
      Array.from(taid.perToken({ studentLogits: student, teacherLogProbs: tf.logSoftmax(teacher) as tf.Tensor3D }).dataSync()),
    );
    expect(maxAbsDiff(fromLogProbs, values)).toBeLessThan(1e-5);
    taid.setState({ t: 1, momentum: 0, previousLoss: null });
    const plain = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });
    const [atOne, kl] = tf.tidy(() => [
      Array.from(taid.perToken({ studentLogits: student, teacherLogits: teacher }).dataSync()),
      Array.from(plain.perToken({ studentLogits: student, teacherLogits: teacher }).dataSync()),
    ]);
    expect(maxAbsDiff(atOne as number[], kl as number[])).toBeLessThan(1e-5);
    [student, teacher].forEach((x) => x.dispose());
  });

  it('gradient: softmax(s) - p_t, the target held fixed (finite differences of KL(p_fixed || softmax(s))); the same under the cross-entropy objective', () => {
    const { student, teacher } = logits();
    const t = 0.45;
    const weights = tf.randomUniform([2, 3], 0.5, 1.5, 'float32', 3);
    for (const objective of ['kl', 'cross-entropy'] as const) {
      const taid = new TaidDivergence({ tStart: t, objective });
      const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(taid.perToken({ studentLogits: x as tf.Tensor3D, teacherLogits: teacher }), weights)))(student);
      const target = tf.tidy(() => tf.softmax(tf.add(tf.mul(student, 1 - t), tf.mul(teacher, t))));
      const closed = tf.tidy(() => tf.mul(tf.expandDims(weights, -1), tf.sub(tf.softmax(student), target)));
      expect(maxAbsDiff(Array.from(grad.dataSync()), Array.from(closed.dataSync()))).toBeLessThan(1e-5);
      // Finite differences of the fixed-target KL at a few coordinates.
      const fixed = (x: tf.Tensor) =>
        tf.tidy(() => tf.sum(tf.mul(tf.sum(tf.mul(target, tf.sub(tf.log(target), tf.logSoftmax(x))), -1), weights)).dataSync()[0] as number);
      const base = student.dataSync();
      for (const k of [0, 9, 20, 41]) {
        const h = 1e-2;
        const plus = Float32Array.from(base);
        const minus = Float32Array.from(base);
        plus[k] = (plus[k] as number) + h;
        minus[k] = (minus[k] as number) - h;
        const [xp, xm] = [tf.tensor3d(plus, [2, 3, 7]), tf.tensor3d(minus, [2, 3, 7])];
        expect(Math.abs((fixed(xp) - fixed(xm)) / (2 * h) - (grad.dataSync()[k] as number))).toBeLessThan(2e-3);
        [xp, xm].forEach((x) => x.dispose());
      }
      [grad, target, closed].forEach((x) => x.dispose());
    }
    [student, teacher, weights].forEach((x) => x.dispose());
  });
});

describe("TAID's schedule", () => {
  it('by hand: the first step records the loss; then momentum of the relative change, sigmoid, and the linear floor', () => {
    const taid = new TaidDivergence({ alpha: 0.5, beta: 0.5 });
    const ts = [2, 1, 1, 4].map((loss, step) => {
      const used = taid.stats().t;
      taid.observe({ step, totalSteps: 10, loss });
      return [used, taid.t];
    });
    // step 1: change 0.5, m 0.25, t = 0.4 + 0.5 sigmoid(0.25) 0.6; step 2: change 0, m 0.125; step 3: change -3, m -1.4375.
    expect(ts.map(([, after]) => after)).toEqual([
      0.4,
      expect.closeTo(0.5686529502657, 10),
      expect.closeTo(0.6832207482637, 10),
      expect.closeTo(0.7136209105009, 10),
    ]);
    expect(ts.map(([used]) => used)).toEqual([0.4, 0.4, expect.closeTo(0.5686529502657, 10), expect.closeTo(0.6832207482637, 10)]);
  });

  it('never below the linear floor, never above tEnd, never falling; adaptive false is the floor alone', () => {
    const taid = new TaidDivergence({ tStart: 0.2, tEnd: 0.9, alpha: 0.2, beta: 0.9 });
    const floorOnly = new TaidDivergence({ tStart: 0.2, tEnd: 0.9, alpha: 0.05, adaptive: false });
    const losses = Array.from({ length: 40 }, (_, i) => 3 * Math.exp(-i / 5) + 0.3 * Math.sin(i));
    let previous = taid.t;
    losses.forEach((loss, step) => {
      taid.observe({ step, totalSteps: 40, loss });
      floorOnly.observe({ step, totalSteps: 40, loss });
      const floor = 0.2 + (0.7 * step) / 40;
      if (step > 0) {
        expect(taid.t).toBeGreaterThanOrEqual(floor - 1e-12);
        expect(floorOnly.t).toBeCloseTo(floor, 12);
      }
      expect(taid.t).toBeLessThanOrEqual(0.9);
      expect(taid.t).toBeGreaterThanOrEqual(previous);
      previous = taid.t;
    });
    expect(taid.t).toBeGreaterThan(floorOnly.t); // the falling loss pushed it ahead of the floor
    // A saturating rise is capped at tEnd.
    const fast = new TaidDivergence({ tStart: 0.5, tEnd: 0.6, alpha: 1 });
    [5, 1, 0.2, 0.1].forEach((loss, step) => fast.observe({ step, totalSteps: 100, loss }));
    expect(fast.t).toBe(0.6);
  });

  it('its state round-trips through JSON: a restored schedule continues the same; bad options and states are refused', () => {
    const a = new TaidDivergence({ alpha: 0.2, beta: 0.7 });
    [3, 2.5, 2.7].forEach((loss, step) => a.observe({ step, totalSteps: 20, loss }));
    const b = new TaidDivergence({ alpha: 0.2, beta: 0.7 });
    b.setState(JSON.parse(JSON.stringify(a.getState())));
    [2, 1.9, 2.2].forEach((loss, i) => {
      a.observe({ step: 3 + i, totalSteps: 20, loss });
      b.observe({ step: 3 + i, totalSteps: 20, loss });
      expect(b.t).toBe(a.t);
    });
    expect(() => b.setState({ t: 'x' })).toThrow('taid: not a saved TAID state');
    expect(() => new TaidDivergence({ tStart: 1 })).toThrow('taid: tStart must be in [0, 1), got 1');
    expect(() => new TaidDivergence({ tStart: 0.8, tEnd: 0.5 })).toThrow('taid: tEnd (0.5) must be at least tStart (0.8)');
  });
});
