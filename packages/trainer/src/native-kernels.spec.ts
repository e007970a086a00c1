import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { CrossEntropy, forwardKl, tokenLoss, TokenDivergence } from '@skd/divergences';
import { GptModel, gptConfigSchema } from '@skd/models';
import { loadAddon, registerNativeKernels } from '@skd/native';
import { useBackend } from '@skd/testing';
import { AdamW } from './optimizer';

// The native kernels change how every step is computed (fused ops, other summation orders), never
// what: a whole training run must follow the same loss curve as the stock kernels' composite forms.
beforeAll(() => useBackend('wasm'));
afterAll(async () => {
  registerNativeKernels();
  await useBackend('cpu');
});

const available = loadAddon().addon !== undefined;

/** Losses of `steps` AdamW steps on fixed random batches, from the same initial weights. */
function lossCurve(native: boolean, steps: number, distil: boolean): number[] {
  registerNativeKernels({ stockBaseline: !native });
  const config = gptConfigSchema.parse({ vocabSize: 48, contextLength: 24, layers: 2, heads: 2, dModel: 32 });
  const student = new GptModel(config, { seed: 1 });
  const teacher = new GptModel(config, { seed: 2 });
  // Large random weights: a peaked teacher, far from the near-uniform fresh student.
  teacher.trainableVariables.forEach((v, i) => tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 50 + i))));
  const optimizer = new AdamW(student.trainableVariables, { learningRate: 3e-3, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  const rng = Rng.create(3);
  const divergence = distil ? new TokenDivergence({ name: 'forward-kl', fn: forwardKl }) : new CrossEntropy();
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    // Each row follows t -> 7t + 3 (mod 48) from a random start: a rule worth learning.
    const rows = Array.from({ length: 4 }, () => {
      const row = [rng.int(48)];
      while (row.length < 20) row.push(((row[row.length - 1] as number) * 7 + 3) % 48);
      return row;
    });
    const tokens = tf.tensor2d(rows.flat(), [4, 20], 'int32');
    const mask = tf.tensor2d(
      Float32Array.from({ length: 80 }, (_, i) => (i % 20 >= 6 && i % 20 < 18 ? 1 : 0)),
      [4, 20],
    );
    const teacherLogits = distil ? teacher.logits(tokens) : undefined;
    const { value, grads } = tf.variableGrads(
      () => tokenLoss({ divergence, tokens, targetMask: mask, studentLogits: student.logits(tokens), ...(teacherLogits ? { teacherLogits } : {}) }),
      [...student.trainableVariables],
    );
    const ordered = student.trainableVariables.map((v) => grads[v.name] as tf.Tensor);
    optimizer.apply(ordered, 3e-3);
    losses.push(value.dataSync()[0] as number);
    tf.dispose([tokens, mask, value, ...ordered, ...(teacherLogits ? [teacherLogits] : [])]);
  }
  optimizer.dispose();
  student.dispose();
  teacher.dispose();
  return losses;
}

(available ? describe : describe.skip)('training with and without the native kernels', () => {
  it.each([
    ['supervised (cross-entropy)', false],
    ['distillation (forward KL)', true],
  ])('%s: a 200-step run follows the same loss curve within 1e-3', (_name, distil) => {
    const native = lossCurve(true, 200, distil);
    const stock = lossCurve(false, 200, distil);
    expect(native[199]).toBeLessThan(native[0] as number); // it learns: the curve is worth comparing
    const gap = Math.max(...native.map((l, i) => Math.abs(l - (stock[i] as number))));
    expect(gap).toBeLessThan(1e-3);
  });
});
