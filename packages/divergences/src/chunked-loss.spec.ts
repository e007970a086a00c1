import * as tf from '@tensorflow/tfjs-core';
import type { Divergence, OutputLayer } from '@skd/core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { forwardKl, generalizedJsd, reverseKl } from './divergences';
import { CrossEntropy, TokenDivergence } from './token-divergence';
import { chunkedTokenLoss, tokenLoss } from './token-loss';

// The chunked loss against the whole-logits one: the same value and the same gradients for the
// hidden states and the output weight, for every reduction, chunk size and kind of teacher input.
describe.each(['cpu', 'wasm'] as const)('chunkedTokenLoss on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const B = 3;
  const T = 7;
  const d = 5;
  const V = 11;
  const tokens = () =>
    tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % V),
      [B, T],
      'int32',
    );
  // Prompts of 2-3 tokens (not targets), then responses; row 2 has a shorter one and padding.
  const targetMask = () =>
    tf.tensor2d(
      [
        [0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1],
        [0, 0, 1, 1, 0, 0, 0],
      ],
      [B, T],
    );
  const softcap = (x: tf.Tensor2D) => tf.mul(tf.tanh(tf.div(x, 3)), 3) as tf.Tensor2D;
  const layer = (weight: tf.Tensor2D): OutputLayer => ({ weight, project: (h, w) => softcap(tf.matMul(h, w ?? weight, false, true) as tf.Tensor2D) });
  const divergences: [string, Divergence][] = [
    ['forward KL (fused)', new TokenDivergence({ name: 'forward-kl', fn: forwardKl })],
    ['JSD 0.3 at temperature 2', new TokenDivergence({ name: 'jsd', fn: generalizedJsd(0.3), temperature: 2 })],
    ['reverse KL, sparse top-4', new TokenDivergence({ name: 'reverse-kl', fn: reverseKl, sparseTopK: 4 })],
    ['cross-entropy', new CrossEntropy()],
  ];

  it.each(divergences.flatMap(([name, div]) => [1, 3, 100].flatMap((chunk) => (['tokens', 'sequences'] as const).map((r) => [name, chunk, r, div] as const))))(
    '%s, chunk %i, reduction %s: equal value and gradients',
    (_name, chunk, reduction, divergence) => {
      const features = tf.variable(tf.randomNormal([B, T, d], 0, 1, 'float32', 1)) as tf.Variable<tf.Rank.R3>;
      const weight = tf.variable(tf.randomNormal([V, d], 0, 0.7, 'float32', 2)) as tf.Variable<tf.Rank.R2>;
      const teacherLogits = tf.randomNormal([B, T, V], 0, 2, 'float32', 3) as tf.Tensor3D;
      const [ids, mask] = [tokens(), targetMask()];
      const common = { divergence, tokens: ids, targetMask: mask, teacherLogits, sequenceWeights: [1, 0.5, 2], reduction, normalizer: 9 };
      const whole = tf.variableGrads(
        () =>
          tokenLoss({
            ...common,
            studentLogits: tf.reshape(layer(weight).project(tf.reshape(features, [B * T, d]) as tf.Tensor2D, weight), [B, T, V]) as tf.Tensor3D,
          }),
        [features, weight],
      );
      const chunked = tf.variableGrads(() => chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: layer(weight), chunk }), [features, weight]);
      expect(chunked.value.dataSync()[0]).toBeCloseTo(whole.value.dataSync()[0] as number, 5);
      for (const v of [features, weight])
        expect(maxAbsDiff(Array.from((chunked.grads[v.name] as tf.Tensor).dataSync()), Array.from((whole.grads[v.name] as tf.Tensor).dataSync()))).toBeLessThan(
          1e-5,
        );
      expect(Array.from((whole.grads[weight.name] as tf.Tensor).dataSync()).some((g) => g !== 0)).toBe(true);
      tf.dispose([whole.value, chunked.value, ...Object.values(whole.grads), ...Object.values(chunked.grads), features, weight, teacherLogits, ids, mask]);
    },
  );

  it('a frozen output layer (no weight): the same value and feature gradients, no gradient taken for the head, nothing leaked', async () => {
    const features = tf.variable(tf.randomNormal([B, T, d], 0, 1, 'float32', 7)) as tf.Variable<tf.Rank.R3>;
    const weight = tf.randomNormal([V, d], 0, 0.7, 'float32', 8) as tf.Tensor2D;
    const teacherLogits = tf.randomNormal([B, T, V], 0, 2, 'float32', 9) as tf.Tensor3D;
    const [ids, mask] = [tokens(), targetMask()];
    const divergence = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });
    const common = { divergence, tokens: ids, targetMask: mask, teacherLogits };
    const given: (tf.Tensor2D | undefined)[] = [];
    const frozen: OutputLayer = {
      project: (h, w) => {
        given.push(w);
        return softcap(tf.matMul(h, weight, false, true) as tf.Tensor2D);
      },
    };
    const whole = tf.variableGrads(
      () => tokenLoss({ ...common, studentLogits: tf.reshape(frozen.project(tf.reshape(features, [B * T, d]) as tf.Tensor2D), [B, T, V]) as tf.Tensor3D }),
      [features],
    );
    const chunked = tf.variableGrads(() => chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: frozen, chunk: 3 }), [features]);
    expect(chunked.value.dataSync()[0]).toBeCloseTo(whole.value.dataSync()[0] as number, 5);
    expect(
      maxAbsDiff(Array.from((chunked.grads[features.name] as tf.Tensor).dataSync()), Array.from((whole.grads[features.name] as tf.Tensor).dataSync())),
    ).toBeLessThan(1e-5);
    expect(given.length).toBeGreaterThan(2);
    expect(given.every((w) => w === undefined)).toBe(true);
    expect(
      await tensorsLeakedBy(async () => {
        const { value, grads } = tf.variableGrads(() => chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: frozen, chunk: 3 }), [features]);
        tf.dispose([value, ...Object.values(grads)]);
      }),
    ).toBe(0);
    tf.dispose([whole.value, chunked.value, ...Object.values(whole.grads), ...Object.values(chunked.grads), features, weight, teacherLogits, ids, mask]);
  });

  it('takes cached teacher log-probs like tokenLoss, and leaves no tensor behind', async () => {
    const features = tf.variable(tf.randomNormal([B, T, d], 0, 1, 'float32', 4)) as tf.Variable<tf.Rank.R3>;
    const weight = tf.variable(tf.randomNormal([V, d], 0, 0.7, 'float32', 5)) as tf.Variable<tf.Rank.R2>;
    const teacherLogProbs = tf.logSoftmax(tf.randomNormal([B, T, V], 0, 2, 'float32', 6)) as tf.Tensor3D;
    const [ids, mask] = [tokens(), targetMask()];
    const divergence = new TokenDivergence({ name: 'forward-kl', fn: forwardKl });
    const common = { divergence, tokens: ids, targetMask: mask, teacherLogProbs };
    const whole = tokenLoss({
      ...common,
      studentLogits: tf.reshape(layer(weight).project(tf.reshape(features, [B * T, d]) as tf.Tensor2D, weight), [B, T, V]) as tf.Tensor3D,
    });
    const chunked = chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: layer(weight), chunk: 4 });
    expect(chunked.dataSync()[0]).toBeCloseTo(whole.dataSync()[0] as number, 5);
    expect(
      await tensorsLeakedBy(async () => {
        const { value, grads } = tf.variableGrads(
          () => chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: layer(weight), chunk: 4 }),
          [features, weight],
        );
        tf.dispose([value, ...Object.values(grads)]);
        chunkedTokenLoss({ ...common, studentFeatures: features, outputLayer: layer(weight), chunk: 4 }).dispose(); // without a tape
      }),
    ).toBe(0);
    tf.dispose([whole, chunked, features, weight, teacherLogProbs, ids, mask]);
  });

  it('refuses a chunk that is not a positive integer', () => {
    const features = tf.zeros([B, T, d]) as tf.Tensor3D;
    const weight = tf.zeros([V, d]) as tf.Tensor2D;
    expect(() =>
      chunkedTokenLoss({
        divergence: new CrossEntropy(),
        tokens: tokens(),
        targetMask: targetMask(),
        studentFeatures: features,
        outputLayer: layer(weight),
        chunk: 0,
      }),
    ).toThrow('chunk must be an integer >= 1, got 0');
  });
});
