import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from './index';
import { randomTable, skdClosedForm, topKSet } from './toy';

describe('testing helpers', () => {
  beforeAll(() => useBackend('cpu'));

  it('counts the tensors a function leaves behind', async () => {
    let kept: tf.Tensor | undefined;
    expect(await tensorsLeakedBy(() => tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2))).dispose())).toBe(0);
    expect(await tensorsLeakedBy(() => (kept = tf.scalar(1)))).toBe(1);
    kept?.dispose();
  });

  it('measures the largest elementwise difference', () => {
    expect(maxAbsDiff([1, 2, 3], [1, 2.5, 2])).toBe(1);
    expect(() => maxAbsDiff([1], [1, 2])).toThrow('length 1 vs 2');
  });
});

describe('toy models', () => {
  it('make row-stochastic tables and the SKD closed form', () => {
    const table = randomTable(4, 1);
    table.forEach((row) => expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12));
    expect([...topKSet([0.1, 0.4, 0.4, 0.1], 2)]).toEqual([1, 2]);
    const q = skdClosedForm([0.5, 0.5, 0, 0], [0, 0, 0.6, 0.4], 1); // top-1 of pT is token 2: all of pS rejected
    expect(q).toEqual([0, 0, 0.6, 0.4]);
  });
});
