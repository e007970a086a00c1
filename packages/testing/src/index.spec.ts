import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from './index';

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
