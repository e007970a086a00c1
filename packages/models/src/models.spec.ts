import * as tf from '@tensorflow/tfjs-core';
import { useBackend, tensorsLeakedBy } from '@skd/testing';
import { BigramModel } from './bigram-model';
import { ByteTokenizer } from './byte-tokenizer';

beforeAll(() => useBackend('cpu'));

describe('ByteTokenizer', () => {
  const tokenizer = new ByteTokenizer();

  it('round-trips any script, Assamese included', () => {
    for (const text of ['hello', 'অসমীয়া ভাষা', 'naïve — ✓', '']) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
    expect(tokenizer.encode('অ')).toHaveLength(3);
  });

  it('drops special tokens unless asked to keep them', () => {
    const ids = [tokenizer.special.bos as number, ...tokenizer.encode('hi'), tokenizer.special.eos];
    expect(tokenizer.decode(ids)).toBe('hi');
    expect(tokenizer.decode(ids, { keepSpecial: true })).toBe('<|bos|>hi<|eos|>');
  });
});

describe('BigramModel', () => {
  const table = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
  ];

  it('returns the table row of each token as its next-token logits', () => {
    const model = new BigramModel({ vocabSize: 3, contextLength: 8, seed: 1, table });
    const logits = model.logits(tf.tensor2d([[2, 0]], [1, 2], 'int32'));
    expect(logits.shape).toEqual([1, 2, 3]);
    expect(logits.arraySync()).toEqual([[table[2], table[0]]]);
    logits.dispose();
    model.dispose();
  });

  it("decodes incrementally like the full forward, counts each row's real tokens and rolls rows back", async () => {
    const model = new BigramModel({ vocabSize: 3, contextLength: 4, seed: 1, table });
    const state = model.startDecoding(2, 4);
    const a = model.decode(
      tf.tensor2d(
        [
          [1, 2],
          [0, 1],
        ],
        [2, 2],
        'int32',
      ),
      state,
      {
        mask: tf.tensor2d([
          [1, 1],
          [0, 1],
        ]),
      },
    );
    expect(state.lengths).toEqual([2, 1]);
    expect((a.arraySync() as number[][][])[0]).toEqual([table[1], table[2]]);
    state.rollback([1, undefined]);
    expect(state.lengths).toEqual([1, 1]);
    expect(() =>
      model.decode(
        tf.tensor2d(
          [
            [1, 1, 1, 1],
            [1, 1, 1, 1],
          ],
          [2, 4],
          'int32',
        ),
        state,
      ),
    ).toThrow('row 0: 4 more tokens exceed the 4');
    expect(() => state.rollback([3, undefined])).toThrow('cannot roll row 0 back to 3 tokens: it holds 1');
    a.dispose();
    state.dispose();
    model.dispose();
  });

  it('draws its initial weights with std initScale', () => {
    const std = (initScale: number) => {
      const m = new BigramModel({ vocabSize: 64, contextLength: 4, seed: 1, initScale });
      const data = Array.from(m.table.dataSync());
      m.dispose();
      return Math.sqrt(data.reduce((s, x) => s + x * x, 0) / data.length);
    };
    expect(std(0.02)).toBeCloseTo(0.02, 2);
    expect(std(1)).toBeCloseTo(1, 1);
  });

  it('builds a toy with exactly the given next-token distributions', () => {
    const probabilities = [
      [0.5, 0.5, 0],
      [0.1, 0.2, 0.7],
      [1 / 3, 1 / 3, 1 / 3],
    ];
    const model = BigramModel.fromProbabilities(probabilities);
    const probs = tf.tidy(() => tf.softmax(model.logits(tf.tensor2d([[0, 1, 2]], [1, 3], 'int32'))).arraySync() as number[][][]);
    probs[0]?.forEach((row, a) => row.forEach((p, i) => expect(p).toBeCloseTo(probabilities[a]?.[i] as number, 6)));
    model.dispose();
  });

  it('initialises from the seed, rejects a misshapen table, and leaks nothing', async () => {
    const w = (seed: number) => {
      const m = new BigramModel({ vocabSize: 4, contextLength: 4, seed });
      const data = Array.from(m.table.dataSync());
      m.dispose();
      return data;
    };
    expect(w(1)).toEqual(w(1));
    expect(w(1)).not.toEqual(w(2));
    expect(() => new BigramModel({ vocabSize: 3, contextLength: 4, seed: 1, table: [[1, 2, 3]] })).toThrow('bigram table must have shape (3, 3)');
    expect(await tensorsLeakedBy(() => w(3))).toBe(0);
  });
});
