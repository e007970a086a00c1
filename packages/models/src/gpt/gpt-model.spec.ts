import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { KERNELS } from '@skd/ops';
import { maxAbsDiff, tensorsLeakedBy, useBackend } from '@skd/testing';
import { generate } from '../generation';
import { gptConfig, gptConfigSchema, type GptConfig } from './config';
import { GptModel } from './gpt-model';

beforeAll(() => useBackend('cpu'));

const TOL = 1e-4; // float32 cached vs full recomputation: same math, different summation order

function config(overrides: Partial<GptConfig> = {}): GptConfig {
  return gptConfigSchema.parse({ vocabSize: 13, contextLength: 24, layers: 2, heads: 2, dModel: 16, ...overrides });
}

const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]?.length ?? 0], 'int32');

function fullLogits(model: GptModel, row: number[]): number[][] {
  return tf.tidy(() => (model.logits(ids([row])).arraySync() as number[][][])[0] as number[][]);
}

function decodeRows(model: GptModel, state: ReturnType<GptModel['startDecoding']>, rows: number[][], mask?: number[][]): number[][][] {
  const tokens = ids(rows);
  const maskTensor = mask ? tf.tensor2d(mask) : undefined;
  try {
    const logits = model.decode(tokens, state, maskTensor ? { mask: maskTensor } : {});
    const out = logits.arraySync() as number[][][];
    logits.dispose();
    return out;
  } finally {
    tf.dispose([tokens, ...(maskTensor ? [maskTensor] : [])]);
  }
}

// Decoding runs through the portable tensor KV cache on cpu and the native in-place cache on wasm
// (where @skd/native registers its kernels); both must equal a full recomputation.
describe.each([
  ['cpu', 'learned positions, tied head', {}],
  ['cpu', 'rotary positions, separate head', { positions: 'rotary', tiedHead: false }],
  ['wasm', 'learned positions, tied head', {}],
  ['wasm', 'rotary positions, separate head', { positions: 'rotary', tiedHead: false }],
] as ['cpu' | 'wasm', string, Partial<GptConfig>][])('GptModel on %s (%s)', (backend, _name, overrides) => {
  let model: GptModel;
  beforeAll(async () => {
    await useBackend(backend);
    model = new GptModel(config(overrides), { seed: 5 });
  });
  afterAll(async () => {
    model.dispose();
    await useBackend('cpu');
  });

  it('uses the cache and the decode path this backend is meant to (one native kernel per step on wasm, op by op on cpu)', () => {
    const native = tf.getKernel(KERNELS.cachedAttention, tf.getBackend()) !== undefined;
    expect(native).toBe(backend === 'wasm' && tf.getKernel(KERNELS.attention, 'wasm') !== undefined);
    const state = model.startDecoding(1, 4);
    expect(state.cache.constructor.name).toBe(native ? 'NativeKvCache' : 'TensorKvCache');
    const spy = jest.spyOn(tf.engine(), 'runKernel');
    decodeRows(model, state, [[1, 2]]);
    const kernels = spy.mock.calls.map(([name]) => name);
    spy.mockRestore();
    expect(kernels.includes(KERNELS.transformerDecode)).toBe(native);
    expect(kernels.includes(KERNELS.layerNorm)).toBe(false); // never also op by op
    state.dispose();
  });

  it("returns only the last column with lastOnly, equal to the full decode's last column", () => {
    const rows = [
      [3, 1, 4, 1],
      [0, 0, 9, 2],
    ];
    const mask = [
      [1, 1, 1, 1],
      [0, 0, 1, 1],
    ];
    const run = (lastOnly: boolean) => {
      const state = model.startDecoding(2, 8);
      const tokens = ids(rows);
      const maskTensor = tf.tensor2d(mask);
      const logits = model.decode(tokens, state, { mask: maskTensor, lastOnly });
      const out = logits.arraySync() as number[][][];
      tf.dispose([logits, tokens, maskTensor]);
      expect(state.lengths).toEqual([4, 2]);
      state.dispose();
      return out;
    };
    const last = run(true);
    const full = run(false);
    expect(last.map((r) => r.length)).toEqual([1, 1]);
    expect(maxAbsDiff(last.flat(2), full.map((r) => r[3] as number[]).flat())).toBeLessThan(TOL);
  });

  it('decodes with the cache exactly like a full recomputation, token by token', () => {
    const seq = [1, 5, 2, 8, 3, 3, 7];
    const full = fullLogits(model, seq);
    const state = model.startDecoding(1, 10);
    const cached = seq.map((token) => (decodeRows(model, state, [[token]])[0] as number[][])[0] as number[]);
    expect(state.lengths).toEqual([7]);
    state.dispose();
    expect(maxAbsDiff(full.flat(), cached.flat())).toBeLessThan(TOL);
  });

  it('scores a block of proposed tokens in one pass like step-by-step decoding', () => {
    const prefix = [4, 2, 9];
    const block = [1, 6, 6, 2, 11];
    const a = model.startDecoding(1, 10);
    decodeRows(model, a, [prefix]);
    const blockLogits = (decodeRows(model, a, [block])[0] as number[][]).flat();
    const b = model.startDecoding(1, 10);
    decodeRows(model, b, [prefix]);
    const stepLogits = block.flatMap((t) => (decodeRows(model, b, [[t]])[0] as number[][])[0] as number[]);
    expect(maxAbsDiff(blockLogits, stepLogits)).toBeLessThan(TOL);
    expect(a.lengths).toEqual([8]);
    a.dispose();
    b.dispose();
  });

  it('rolls a row back after a rejection and continues as if the rejected tokens never came', () => {
    const state = model.startDecoding(1, 12);
    decodeRows(model, state, [[1, 2, 3, 4, 5]]); // prefix 1 2 3, then a draft 4 5 that gets rejected
    state.rollback([3]);
    expect(state.lengths).toEqual([3]);
    const next = (decodeRows(model, state, [[9]])[0] as number[][])[0] as number[];
    const expected = fullLogits(model, [1, 2, 3, 9])[3] as number[];
    expect(maxAbsDiff(next, expected)).toBeLessThan(TOL);
    state.dispose();
  });

  it('batches rows with different prompt lengths (left padding) like each row alone', () => {
    const rows = [
      [3, 1, 4, 1, 5],
      [9, 2],
    ];
    const padded = [
      [3, 1, 4, 1, 5],
      [0, 0, 0, 9, 2],
    ];
    const mask = [
      [1, 1, 1, 1, 1],
      [0, 0, 0, 1, 1],
    ];
    const state = model.startDecoding(2, 8);
    const prompt = decodeRows(model, state, padded, mask);
    expect(state.lengths).toEqual([5, 2]);
    const step = decodeRows(model, state, [[7], [7]]);
    state.dispose();
    rows.forEach((row, b) => {
      const alone = fullLogits(model, [...row, 7]);
      expect(maxAbsDiff((prompt[b] as number[][])[4] as number[], alone[row.length - 1] as number[])).toBeLessThan(TOL);
      expect(maxAbsDiff((step[b] as number[][])[0] as number[], alone[row.length] as number[])).toBeLessThan(TOL);
    });
  });

  it('advances rows by their own real slots and rolls back one row without touching the others', () => {
    const state = model.startDecoding(2, 10);
    // Row 0 reads four tokens; row 1 two, then padding (a row whose draft ended early).
    const first = decodeRows(
      model,
      state,
      [
        [1, 2, 3, 4],
        [5, 6, 0, 0],
      ],
      [
        [1, 1, 1, 1],
        [1, 1, 0, 0],
      ],
    );
    expect(state.lengths).toEqual([4, 2]);
    expect(maxAbsDiff((first[1] as number[][]).slice(0, 2).flat(), fullLogits(model, [5, 6]).flat())).toBeLessThan(TOL);
    state.rollback([2, undefined]); // row 0 rejects its last two tokens; row 1 keeps both
    expect(state.lengths).toEqual([2, 2]);
    // A block whose first slot is padding in row 0 (no pending token) but real in row 1.
    const next = decodeRows(
      model,
      state,
      [
        [0, 9, 8],
        [7, 9, 8],
      ],
      [
        [0, 1, 1],
        [1, 1, 1],
      ],
    );
    expect(state.lengths).toEqual([4, 5]);
    state.dispose();
    expect(maxAbsDiff((next[0] as number[][]).slice(1).flat(), fullLogits(model, [1, 2, 9, 8]).slice(2).flat())).toBeLessThan(TOL);
    expect(maxAbsDiff((next[1] as number[][]).flat(), fullLogits(model, [5, 6, 7, 9, 8]).slice(2).flat())).toBeLessThan(TOL);
  });

  it('matches the full forward for right-padded training batches on the real tokens', () => {
    const logits = model.logits(
      ids([
        [1, 2, 3, 0],
        [4, 5, 0, 0],
      ]),
      {
        mask: tf.tensor2d([
          [1, 1, 1, 0],
          [1, 1, 0, 0],
        ]),
      },
    );
    const rows = logits.arraySync() as number[][][];
    logits.dispose();
    expect(maxAbsDiff((rows[1] as number[][]).slice(0, 2).flat(), fullLogits(model, [4, 5]).flat())).toBeLessThan(TOL);
  });

  it('refuses more tokens than a row was started for, and a state longer than the context', () => {
    const state = model.startDecoding(2, 4);
    decodeRows(
      model,
      state,
      [
        [1, 2, 3],
        [1, 0, 0],
      ],
      [
        [1, 1, 1],
        [1, 0, 0],
      ],
    );
    expect(() =>
      decodeRows(model, state, [
        [1, 2],
        [1, 2],
      ]),
    ).toThrow('row 0: 2 more tokens exceed the 4 the decode state was started for (it holds 3)');
    expect(state.lengths).toEqual([3, 1]); // the refused step changed nothing
    expect(() => state.rollback([4, undefined])).toThrow('cannot roll row 0 back to 4 tokens: it holds 3');
    state.dispose();
    expect(() => model.startDecoding(1, 25)).toThrow("cannot decode 25 tokens per row: the model's context is 24");
  });

  it('keeps numTensors flat over decode steps, rollbacks and disposal', async () => {
    expect(
      await tensorsLeakedBy(() => {
        const state = model.startDecoding(2, 20);
        for (let i = 0; i < 5; i++) {
          decodeRows(
            model,
            state,
            [
              [1, 2, 3],
              [4, 0, 0],
            ],
            [
              [1, 1, 1],
              [1, 0, 0],
            ],
          );
          state.rollback([(state.lengths[0] as number) - 1, undefined]);
        }
        state.dispose();
      }),
    ).toBe(0);
  });
});

describe('GptModel options and errors', () => {
  it('lays out parameters by config: rotary has no wpe, a separate head adds lm_head', () => {
    const learned = new GptModel(config(), { seed: 1 });
    const rotary = new GptModel(config({ positions: 'rotary', tiedHead: false }), { seed: 1 });
    expect(learned.params.has('wpe.weight')).toBe(true);
    expect(learned.params.has('lm_head.weight')).toBe(false);
    expect(rotary.params.has('wpe.weight')).toBe(false);
    expect(rotary.params.get('lm_head.weight')?.shape).toEqual([13, 16]);
    const perLayer = 2 * 16 + (16 * 48 + 48) + (16 * 16 + 16) + 2 * 16 + (16 * 64 + 64) + (64 * 16 + 16);
    expect(learned.parameterCount).toBe(13 * 16 + 24 * 16 + 2 * perLayer + 2 * 16); // wte, wpe, blocks, ln_f
    learned.dispose();
    rotary.dispose();
  });

  it('sizes the MLP by dFf and uses layerNormEpsilon', () => {
    const wide = new GptModel(config({ dFf: 24 }), { seed: 1 });
    expect(wide.params.get('h.0.mlp.c_fc.weight')?.shape).toEqual([16, 24]);
    const a = new GptModel(config(), { seed: 1 });
    const b = new GptModel(config({ layerNormEpsilon: 10 }), { seed: 1 });
    const out = (m: GptModel) => tf.tidy(() => Array.from(m.logits(ids([[1, 2, 3]])).dataSync()));
    expect(maxAbsDiff(out(a), out(b))).toBeGreaterThan(1e-4);
    [wide, a, b].forEach((m) => m.dispose());
  });

  it('applies dropout only when training, deterministically by seed', () => {
    const model = new GptModel(config({ dropout: 0.3 }), { seed: 2 });
    const run = (options: object) => tf.tidy(() => Array.from(model.logits(ids([[1, 2, 3]]), options).dataSync()));
    const evalA = run({});
    expect(run({ training: false })).toEqual(evalA);
    const trainA = run({ training: true, seed: 11 });
    expect(maxAbsDiff(trainA, evalA)).toBeGreaterThan(1e-3);
    expect(run({ training: true, seed: 11 })).toEqual(trainA);
    expect(maxAbsDiff(run({ training: true, seed: 12 }), trainA)).toBeGreaterThan(1e-3);
    model.dispose();
    const noDropout = new GptModel(config({ dropout: 0 }), { seed: 2 });
    expect(tf.tidy(() => Array.from(noDropout.logits(ids([[1, 2, 3]]), { training: true, seed: 11 }).dataSync()))).toEqual(evalA);
    noDropout.dispose();
  });

  it('rejects inconsistent configs, over-long inputs and foreign decode states', () => {
    expect(() => new GptModel(config({ dModel: 15, heads: 2 }), { seed: 1 })).toThrow('dModel must be divisible by heads, got dModel 15 and heads 2');
    const model = new GptModel(config(), { seed: 1 });
    const other = new GptModel(config(), { seed: 1 });
    expect(() => model.logits(ids([Array.from({ length: 25 }, () => 1)]))).toThrow("25 tokens exceeds the model's context of 24");
    const state = other.startDecoding(1, 4);
    expect(() => model.decode(ids([[1]]), state)).toThrow('not created by this model');
    expect(() => other.decode(ids([[1, 2, 3, 4, 5]]), state)).toThrow('5 more tokens exceed the 4');
    state.dispose();
    model.dispose();
    other.dispose();
  });

  it('loads given weights by name and shape, with clear errors', () => {
    const source = new GptModel(config(), { seed: 3 });
    const copy = new GptModel(config(), { weights: source.params });
    expect(fullLogits(copy, [1, 2, 3])).toEqual(fullLogits(source, [1, 2, 3]));
    const missing = new Map(source.params);
    missing.delete('ln_f.bias');
    expect(() => new GptModel(config(), { weights: missing })).toThrow('weights lack parameter "ln_f.bias"');
    const wrong = new Map<string, tf.Tensor>(source.params);
    const bad = tf.zeros([3]);
    wrong.set('ln_f.bias', bad);
    expect(() => new GptModel(config(), { weights: wrong })).toThrow('"ln_f.bias" must have shape [16], got [3]');
    tf.dispose([bad]);
    copy.dispose();
    source.dispose();
  });
});

describe('memory', () => {
  it('frees everything it made: construct from a seed or from weights, then dispose', async () => {
    const source = new GptModel(config(), { seed: 1 });
    expect(
      await tensorsLeakedBy(() => {
        new GptModel(config(), { seed: 2 }).dispose();
        new GptModel(config({ positions: 'rotary', tiedHead: false }), { seed: 2 }).dispose();
        new GptModel(config(), { weights: source.params }).dispose();
      }),
    ).toBe(0);
    source.dispose();
  });

  it('keeps numTensors flat over 200 generate calls and 200 training steps', async () => {
    const model = new GptModel(config({ dropout: 0.1 }), { seed: 4 });
    const rng = Rng.create(1);
    const generations = await tensorsLeakedBy(async () => {
      for (let i = 0; i < 200; i++) {
        await generate(model, [[1, 2], [3]], { maxNewTokens: 4, eos: 12, pad: 0, rng, temperature: 0.8, topK: 5 });
      }
    });
    expect(generations).toBe(0);
    const tokens = ids([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    const training = await tensorsLeakedBy(() => {
      for (let i = 0; i < 200; i++) {
        tf.tidy(() => {
          const { grads } = tf.variableGrads(() => tf.mean(model.logits(tokens, { training: true, seed: i })) as tf.Scalar);
          for (const [name, g] of Object.entries(grads)) {
            const variable = model.trainableVariables.find((v) => v.name === name);
            variable?.assign(tf.sub(variable, tf.mul(1e-3, g)));
          }
        });
      }
    });
    expect(training).toBe(0);
    tokens.dispose();
    model.dispose();
  });
});

describe('gptConfig (a GPT config without a config file)', () => {
  it('fills the defaults and keeps the given fields', () => {
    expect(gptConfig({ vocabSize: 259, layers: 4 })).toEqual(gptConfigSchema.parse({ vocabSize: 259, layers: 4 }));
    expect(gptConfig({ vocabSize: 259 }).dModel).toBe(128);
  });

  it('refuses bad fields, unknown keys and cross-field problems with a ConfigError', () => {
    expect(() => gptConfig({ vocabSize: 1 })).toThrow(/gptConfig\(\):\n {2}- vocabSize: .*got 1/);
    expect(() => gptConfig({ vocabSize: 10, layer: 2 } as never)).toThrow(/did you mean "layers"/);
    expect(() => gptConfig({ vocabSize: 10, dModel: 10, heads: 4 })).toThrow(/dModel must be divisible by heads, got dModel 10 and heads 4/);
  });
});
