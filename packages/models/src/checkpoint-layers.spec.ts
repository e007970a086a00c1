import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { decoderConfig, DecoderModel } from './decoder';
import { GptModel, gptConfig } from './gpt';

// Checkpointed blocks give the plain backward's gradients (they run the same ops again), inside the
// trainer's tf.variableGrads as a whole step would, on the composite ops (cpu) and the native kernels (wasm).
describe.each(['cpu', 'wasm'] as const)('gradient checkpointing per block on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  const models = {
    'Llama-family decoder (GQA, padding mask)': () =>
      new DecoderModel(decoderConfig({ vocabSize: 37, layers: 3, dModel: 24, heads: 4, kvHeads: 2, contextLength: 32 }), { seed: 5 }),
    'Gemma 2 decoder (sandwich norms, softcaps)': () =>
      new DecoderModel(
        decoderConfig({
          architecture: 'gemma2',
          vocabSize: 37,
          layers: 2,
          dModel: 24,
          heads: 2,
          kvHeads: 1,
          sandwichNorms: true,
          attentionSoftcap: 50,
          finalSoftcap: 30,
          contextLength: 32,
        }),
        { seed: 6 },
      ),
    'GPT with dropout (the same masks when run again)': () =>
      new GptModel(gptConfig({ vocabSize: 37, layers: 3, dModel: 24, heads: 4, dropout: 0.2, contextLength: 32 }), { seed: 7 }),
  };

  it.each(Object.keys(models))('%s: equal loss and gradients, nothing leaked', async (name) => {
    const model = models[name as keyof typeof models]();
    const tokens = tf.tensor2d(
      [Array.from({ length: 12 }, (_, i) => (i * 5) % 37), Array.from({ length: 12 }, (_, i) => (i * 11 + 3) % 37)],
      undefined,
      'int32',
    );
    const mask = tf.tensor2d([Array(12).fill(1), [...Array(9).fill(1), 0, 0, 0]]);
    const step = (checkpointLayers: boolean) => {
      let held = 0; // tensors alive when the forward pass ends: what the tape keeps for the backward
      const { value, grads } = tf.variableGrads(() => {
        const loss = tf.mean(tf.square(model.logits(tokens, { mask, training: true, seed: 3, checkpointLayers }))) as tf.Scalar;
        held = tf.memory().numTensors;
        return loss;
      }, [...model.trainableVariables]);
      const out = {
        held,
        loss: value.dataSync()[0] as number,
        grads: model.trainableVariables.map((v) => Array.from((grads[v.name] as tf.Tensor).dataSync())),
      };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const plain = step(false);
    const checkpointed = step(true);
    expect(checkpointed.loss).toBeCloseTo(plain.loss, 6);
    expect(checkpointed.grads.length).toBe(plain.grads.length);
    plain.grads.forEach((g, i) => expect(maxAbsDiff(checkpointed.grads[i] as number[], g)).toBeLessThan(1e-5));
    expect(plain.grads.flat().some((v) => v !== 0)).toBe(true);
    // and the forward kept less for the backward: each block's input instead of its activations
    expect(checkpointed.held).toBeLessThan(plain.held - 10);
    expect(await tensorsLeakedBy(async () => void step(true))).toBe(0);
    tf.dispose([tokens, mask]);
    model.dispose();
  });
});
