import { estimateTrainingMemory, modelShape, type ModelShape } from './memory';
import { DecoderModel, decoderConfig } from './decoder';
import { GptModel, gptConfig } from './gpt';

const shape: ModelShape = { parameters: 1000, layers: 2, dModel: 8, ffDim: 32, heads: 2, kvHeads: 1, headDim: 4, vocab: 50, gated: true };

describe('estimateTrainingMemory', () => {
  it('adds weights, optimizer state, activations over layers and tokens, logits, and the larger of training and generation', () => {
    const m = estimateTrainingMemory({ student: shape, teacher: { ...shape, parameters: 3000 }, batchSize: 3, sequenceLength: 10, generates: false });
    expect(m.studentWeights).toBe(4 * 1000);
    expect(m.optimizer).toBe(3 * 4 * 1000); // gradients and two AdamW moments
    expect(m.teacherWeights).toBe(4 * 3000);
    // per token and layer: 4d + 2 (H + 2 Hkv) dh + 2 H dh + 3 ff (gated) + 2 H L floats
    const perTokenLayer = 4 * 8 + 2 * (2 + 2) * 4 + 2 * 2 * 4 + 3 * 32 + 2 * 2 * 10;
    expect(m.activations).toBeCloseTo(1.1 * 4 * 30 * (2 + 1) * perTokenLayer, 6);
    expect(m.logits).toBe(4 * 30 * 50 * 4); // student logits, softmax, gradient, teacher log-probs
    expect(m.generation).toBe(0);
    expect(m.total).toBeCloseTo(m.runtime + m.studentWeights + m.optimizer + m.teacherWeights + m.activations + m.logits, 6);
  });

  it('counts generation (KV caches and cached teacher distributions) only when the sampler generates, as its own phase', () => {
    const base = { student: shape, batchSize: 2, sequenceLength: 16 };
    const quiet = estimateTrainingMemory({ ...base, generates: false });
    const sampling = estimateTrainingMemory({ ...base, generates: true, cachedTeacherFloats: 1e9 });
    expect(sampling.generation).toBe(4 * 2 * 2 * 1 * 4 * 32 + 4 * 1e9);
    expect(sampling.total).toBeCloseTo(quiet.total - quiet.activations - quiet.logits + sampling.generation, 3);
  });

  it('with checkpointLayers keeps every block input and two blocks of activations instead of all', () => {
    const tall = { ...shape, layers: 12 };
    const input = { student: tall, batchSize: 2, sequenceLength: 10, generates: false };
    const plain = estimateTrainingMemory(input).activations;
    const checkpointed = estimateTrainingMemory({ ...input, checkpointLayers: true }).activations;
    expect(checkpointed).toBeCloseTo((plain / 13) * 2 + 4 * 20 * 12 * 8, 6);
  });

  it('with lossChunk counts one slice of student logits instead of the batch', () => {
    const input = { student: shape, batchSize: 4, sequenceLength: 10, generates: false };
    expect(estimateTrainingMemory({ ...input, lossChunk: 5 }).logits).toBe(4 * 50 * 3 * 5);
    expect(estimateTrainingMemory(input).logits).toBe(4 * 50 * 3 * 40);
  });

  it('grows with the batch and the sequence, and the attention term with the square of the sequence', () => {
    const at = (batchSize: number, sequenceLength: number) =>
      estimateTrainingMemory({ student: shape, batchSize, sequenceLength, generates: false }).activations;
    expect(at(4, 10) / at(2, 10)).toBeCloseTo(2, 6);
    expect(at(2, 40) / at(2, 20)).toBeGreaterThan(2);
  });
});

describe('modelShape', () => {
  it('reads the shapes of skd GPTs and Llama-family decoders', () => {
    const gpt = new GptModel(gptConfig({ vocabSize: 40, layers: 3, dModel: 16, heads: 2, contextLength: 32 }), { seed: 1 });
    expect(modelShape(gpt)).toMatchObject({
      layers: 3,
      dModel: 16,
      ffDim: 64,
      heads: 2,
      kvHeads: 2,
      headDim: 8,
      vocab: 40,
      gated: false,
      parameters: gpt.parameterCount,
    });
    gpt.dispose();
    const llama = new DecoderModel(decoderConfig({ vocabSize: 40, layers: 2, dModel: 16, heads: 4, kvHeads: 2, dFf: 24 }), { seed: 1 });
    expect(modelShape(llama)).toMatchObject({ layers: 2, dModel: 16, ffDim: 24, heads: 4, kvHeads: 2, headDim: 4, vocab: 40, gated: true });
    expect(modelShape(llama)?.weightBytes).toBe(4 * llama.parameterCount);
    llama.dispose();
  });

  it("counts a 16-bit teacher's matrices at 2 bytes and its norms at 4, in the estimate's teacher weights", () => {
    const config = decoderConfig({ vocabSize: 40, layers: 2, dModel: 16, heads: 4, kvHeads: 2, dFf: 24 });
    const half = new DecoderModel(config, { seed: 1, dtype: 'bfloat16' });
    const norms = 2 * 2 * 16 + 16; // two per layer, and the final one
    const shape = modelShape(half);
    expect(shape?.weightBytes).toBe(2 * (half.parameterCount - norms) + 4 * norms);
    const full = new DecoderModel(config, { seed: 2 });
    const estimate = estimateTrainingMemory({
      student: modelShape(full) as ModelShape,
      teacher: shape as ModelShape,
      batchSize: 2,
      sequenceLength: 8,
      generates: false,
    });
    expect(estimate.teacherWeights).toBe(shape?.weightBytes);
    expect(estimate.studentWeights).toBe(4 * full.parameterCount);
    [half, full].forEach((m) => m.dispose());
  });
});
