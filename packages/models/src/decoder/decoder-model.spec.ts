import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { generate } from '../generation';
import { decoderConfig, decoderParameterShapes, type DecoderConfig } from './config';
import { DecoderModel } from './decoder-model';

const TOL = 1e-4; // float32 cached vs full recomputation: same math, different summation order

// Every switch of the family at once: grouped-query heads, Gemma 2's sandwich norms, soft-caps and a
// sliding window short enough that blocks cross it, llama3 rotary scaling, biases, an untied head.
// Two hold their matrices in 16 bits (a frozen teacher's): the same checks hold.
const LLAMA: Partial<DecoderConfig> = { kvHeads: 2, qkvBias: true, outputBias: true, mlpBias: true, tiedHead: false };
const GEMMA2: Partial<DecoderConfig> = {
  architecture: 'gemma2',
  kvHeads: 1,
  normOffset: 1,
  embedScale: true,
  activation: 'gelu_tanh',
  sandwichNorms: true,
  attentionSoftcap: 4,
  finalSoftcap: 6,
  slidingWindow: 3,
  layerTypes: ['sliding', 'full'],
};
const VARIANTS: [string, Partial<DecoderConfig>, ('bfloat16' | 'float16')?][] = [
  [
    'llama (GQA, llama3 rope, biases, untied head)',
    { ...LLAMA, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8 } },
  ],
  ['qwen3 (per-head q/k norms, head width apart from d / heads)', { architecture: 'qwen3', kvHeads: 2, headDim: 6, qkNorm: 'head', tiedHead: false }],
  ['olmo2 (norms after each sublayer, q/k norms over the whole projection)', { architecture: 'olmo2', kvHeads: 2, postNorms: true, qkNorm: 'projection' }],
  ['mistral (a sliding window of 3 on every layer)', { architecture: 'mistral', kvHeads: 1, slidingWindow: 3, layerTypes: ['sliding', 'sliding'] }],
  [
    'gemma3 (sliding and full layers with their own rope bases, per-head q/k norms, sandwich norms)',
    {
      architecture: 'gemma3',
      kvHeads: 1,
      headDim: 6,
      normOffset: 1,
      embedScale: true,
      activation: 'gelu_tanh',
      sandwichNorms: true,
      qkNorm: 'head',
      attentionScale: 0.3,
      slidingWindow: 3,
      layerTypes: ['sliding', 'full'],
      ropeTheta: 1e6,
      ropeScaling: { type: 'linear', factor: 2 },
      slidingRopeTheta: 10000,
    },
  ],
  ['llama held in bfloat16 (GQA, biases, untied head)', LLAMA, 'bfloat16'],
  ['gemma2 held in float16 (tied head, soft-caps, sliding window 3)', GEMMA2, 'float16'],
  ['gemma2 (sandwich norms, soft-caps, sliding window 3)', { ...GEMMA2, attentionScale: 0.3 }],
];

const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]?.length ?? 0], 'int32');

describe.each(['cpu', 'wasm'] as const)('DecoderModel on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  describe.each(VARIANTS)('%s', (_name, overrides, dtype) => {
    const make = () =>
      new DecoderModel(decoderConfig({ vocabSize: 17, contextLength: 32, layers: 2, heads: 4, dModel: 16, dFf: 24, ...overrides }), {
        seed: 3,
        ...(dtype ? { dtype } : {}),
      });

    it('decodes in ragged blocks, with rollbacks, to the logits of a full recomputation', () => {
      const model = make();
      const row0 = [1, 5, 2, 9, 3, 3, 7, 11, 4, 6];
      const row1 = [8, 2, 2, 13, 5, 1, 15, 9];
      const full = (row: number[]) => tf.tidy(() => (model.logits(ids([row])).arraySync() as number[][][])[0] as number[][]);
      const state = model.startDecoding(2, 16);
      // Block 1: a left-padded prompt; block 2: row 0 drafts 4 tokens of which the last 2 are wrong
      // and rolled back (as SKD's rejections are); block 3: the rest. `check` marks the slots whose
      // prefix is the real row's (a rejected draft's logits condition on its own wrong token).
      const steps: { tokens: number[][]; mask: number[][]; check: number[][]; rollback?: (number | undefined)[] }[] = [
        {
          tokens: [[row0[0], row0[1], row0[2]] as number[], [0, row1[0], row1[1]] as number[]],
          mask: [
            [1, 1, 1],
            [0, 1, 1],
          ],
          check: [
            [1, 1, 1],
            [0, 1, 1],
          ],
        },
        {
          tokens: [[row0[3], row0[4], 16, 16] as number[], [row1[2], row1[3], row1[4], row1[5]] as number[]],
          mask: [
            [1, 1, 1, 1],
            [1, 1, 1, 1],
          ],
          check: [
            [1, 1, 0, 0],
            [1, 1, 1, 1],
          ],
          rollback: [5, undefined],
        },
        {
          tokens: [[row0[5], row0[6], row0[7], row0[8]] as number[], [row1[6], row1[7], 0, 0] as number[]],
          mask: [
            [1, 1, 1, 1],
            [1, 1, 0, 0],
          ],
          check: [
            [1, 1, 1, 1],
            [1, 1, 0, 0],
          ],
        },
      ];
      const seen = [0, 0];
      const expected = [full(row0), full(row1)];
      let compared = 0;
      for (const step of steps) {
        const logits = tf.tidy(() => model.decode(ids(step.tokens), state, { mask: tf.tensor2d(step.mask) }).arraySync() as number[][][]);
        step.mask.forEach((m, b) => {
          m.forEach((real, j) => {
            // Padding slots are left out of the layers: their logits are 0, not a pass over a pad token.
            if (!real) return expect(Math.max(...(logits[b]?.[j] as number[]).map(Math.abs))).toBe(0);
            if (step.check[b]?.[j]) {
              expect(maxAbsDiff(logits[b]?.[j] as number[], expected[b]?.[seen[b] as number] as number[])).toBeLessThan(TOL);
              compared += 1;
            }
            seen[b] = (seen[b] as number) + 1;
          });
        });
        if (step.rollback) {
          state.rollback(step.rollback);
          step.rollback.forEach((keep, b) => keep !== undefined && (seen[b] = keep));
        }
      }
      expect(compared).toBe(17);
      expect(state.lengths).toEqual([9, 8]);
      state.dispose();
      model.dispose();
    });

    it('keeps logits of a padded batch equal to each row alone, and numTensors flat through generation', async () => {
      const model = make();
      const rows = [
        [3, 1, 4, 1, 5, 9, 2],
        [6, 5, 3, 5, 0, 0, 0],
      ];
      const mask = [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0],
      ];
      const batch = tf.tidy(() => model.logits(ids(rows), { mask: tf.tensor2d(mask) }).arraySync() as number[][][]);
      const alone = tf.tidy(() => model.logits(ids([[6, 5, 3, 5]])).arraySync() as number[][][]);
      expect(maxAbsDiff(batch[1]?.slice(0, 4).flat() as number[], alone[0]?.flat() as number[])).toBeLessThan(TOL);
      const leaked = await tensorsLeakedBy(() => generate(model, [[1, 2, 3], [4]], { maxNewTokens: 6, eos: 0, pad: 0, rng: Rng.create(2), temperature: 0.8 }));
      expect(leaked).toBe(0);
      model.dispose();
    });
  });

  it("holds one block's activations at a time in a forward that nothing differentiates", async () => {
    const tokens = ids([Array.from({ length: 48 }, (_, i) => i % 17)]);
    const peak = async (layers: number) => {
      const model = new DecoderModel(decoderConfig({ vocabSize: 17, contextLength: 64, layers, heads: 4, dModel: 16, dFf: 256 }), { seed: 3 });
      const before = tf.memory().numBytes;
      const info = await tf.profile(() => model.logits(tokens).dispose());
      model.dispose();
      return info.peakBytes - before;
    };
    const [two, eight] = [await peak(2), await peak(8)];
    // One block's gate|up output alone is 48 x 512 floats; six more blocks held would add six of them.
    expect(eight - two).toBeLessThan(48 * 512 * 4);
    expect(two).toBeGreaterThan(48 * 512 * 4);
    tokens.dispose();
  });

  it("scores only the tokenizer's ids when the embedding is padded past them (outputVocab)", () => {
    const config = decoderConfig({ vocabSize: 20, contextLength: 16, layers: 1, heads: 2, dModel: 8 });
    const padded = new DecoderModel(config, { seed: 1, outputVocab: 15 });
    const whole = new DecoderModel(config, { seed: 1 });
    const [a, b] = tf.tidy(() => [padded.logits(ids([[1, 2, 3]])).arraySync() as number[][][], whole.logits(ids([[1, 2, 3]])).arraySync() as number[][][]]);
    expect(padded.vocabSize).toBe(15);
    expect(a?.[0]?.[2]).toHaveLength(15);
    expect(a?.[0]?.[2]).toEqual(b?.[0]?.[2]?.slice(0, 15));
    expect(() => new DecoderModel(config, { seed: 1, outputVocab: 21 })).toThrow("outputVocab must be between 2 and the embedding's 20 rows, got 21");
    padded.dispose();
    whole.dispose();
  });

  it.each(['bfloat16', 'float16'] as const)(
    'a model held in %s computes what a float32 model with its widened weights computes; its norms stay float32; its head is frozen',
    (dtype) => {
      const config = decoderConfig({ vocabSize: 30, contextLength: 16, layers: 2, heads: 4, kvHeads: 2, dModel: 16, dFf: 24, qkvBias: true, tiedHead: false });
      const half = new DecoderModel(config, { seed: 5, dtype });
      expect(half.dtype).toBe(dtype);
      expect([...half.halves.keys()].sort()).toEqual(
        [...decoderParameterShapes(config)]
          .filter(([, shape]) => shape.length === 2)
          .map(([n]) => n)
          .sort(),
      );
      expect(half.trainableVariables.every((v) => v.shape.length === 1)).toBe(true);
      expect(half.outputLayer.weight).toBeUndefined();
      const widened = half.mergedWeights();
      const full = new DecoderModel(config, { weights: widened });
      widened.forEach((t) => t.dispose());
      const x = ids([
        [1, 7, 3, 29, 4],
        [2, 2, 8, 0, 0],
      ]);
      const mask = tf.tensor2d([
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
      ]);
      const [a, b] = tf.tidy(() => [Array.from(half.logits(x, { mask }).dataSync()), Array.from(full.logits(x, { mask }).dataSync())]);
      expect(maxAbsDiff(a as number[], b as number[])).toBeLessThan(1e-5);
      // Its float32 original differs: the weights were rounded.
      const original = new DecoderModel(config, { seed: 5 });
      expect(tf.tidy(() => maxAbsDiff(Array.from(original.logits(x, { mask }).dataSync()), a as number[]))).toBeGreaterThan(1e-6);
      // The frozen head projects features as the model does.
      const fromFeatures = tf.tidy(() => {
        const features = half.features(x, { mask });
        return Array.from(half.outputLayer.project(tf.reshape(features, [10, 16]) as tf.Tensor2D).dataSync());
      });
      expect(maxAbsDiff(fromFeatures, a as number[])).toBeLessThan(1e-5);
      [half, full, original, x, mask].forEach((t) => t.dispose());
    },
  );

  it('refuses configs it cannot build, quoting the values', () => {
    expect(() => decoderConfig({ vocabSize: 10, heads: 3, kvHeads: 2, dModel: 12 })).toThrow('heads must be a multiple of kvHeads, got heads 3 and kvHeads 2');
    expect(() => decoderConfig({ vocabSize: 10, heads: 4, dModel: 12 })).toThrow('rotary positions need an even head dimension, got 3');
    expect(() => decoderConfig({ vocabSize: 10, layers: 2, layerTypes: ['sliding', 'full'] })).toThrow('sliding layers need slidingWindow');
  });
});
