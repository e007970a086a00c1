import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { causalSelfAttention } from './attention';
import { gelu } from './gelu';
import { KERNELS, hasKernel } from './kernels';
import { createKvCache, TensorKvCache } from './kv-cache';
import { layerNorm } from './layer-norm';
import { logSoftmax, sparseCrossEntropy } from './log-softmax';

// The composite forms on the cpu backend (no skd kernel registered there), against plain-JS
// references. @skd/native's tests then hold each native kernel to these composite forms. (This
// package sits below @skd/testing, so its two helpers are written out here.)
beforeAll(() => tf.setBackend('cpu'));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

async function tensorsLeakedBy(fn: () => unknown): Promise<number> {
  const before = tf.memory().numTensors;
  await fn();
  return tf.memory().numTensors - before;
}

const rng = Rng.create(4);
const randoms = (n: number) => Array.from({ length: n }, () => rng.normal());

describe('composite forms', () => {
  it('run on a backend without skd kernels', () => {
    for (const name of Object.values(KERNELS)) expect(hasKernel(name)).toBe(false);
  });

  it('layerNorm: (x - mean) / sqrt(var + eps) * gamma + beta per row', () => {
    const x = [1, 2, 4, -3, 0, 3];
    const out = tf.tidy(() => Array.from(layerNorm(tf.tensor2d(x, [2, 3]), tf.tensor1d([1, 2, 3]), tf.tensor1d([0, 1, -1]), 1e-5).dataSync()));
    const expected = [0, 1].flatMap((r) => {
      const row = x.slice(r * 3, r * 3 + 3);
      const mean = row.reduce((a, b) => a + b) / 3;
      const sd = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / 3 + 1e-5);
      return row.map((v, j) => ((v - mean) / sd) * (j + 1) + ([0, 1, -1][j] as number));
    });
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-5);
  });

  it('gelu: the tanh form, checked by hand at a few points', () => {
    const xs = [-3, -0.5, 0, 0.5, 3];
    const out = tf.tidy(() => Array.from(gelu(tf.tensor1d(xs)).dataSync()));
    const byHand = xs.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
    expect(maxAbsDiff(out, byHand)).toBeLessThan(1e-6);
  });

  it('causal self-attention equals a loop over heads, queries and visible keys', () => {
    const [B, T, H, dh] = [2, 4, 2, 3];
    const d = H * dh;
    const qkv = randoms(B * T * 3 * d);
    const mask = [1, 1, 1, 0, 1, 1, 1, 1];
    const out = tf.tidy(() =>
      Array.from(causalSelfAttention(tf.tensor2d(qkv, [B * T, 3 * d]), { batch: B, heads: H, mask: tf.tensor2d(mask, [B, T]) }).dataSync()),
    );
    const at = (b: number, t: number, part: number, h: number, c: number) => qkv[(b * T + t) * 3 * d + part * d + h * dh + c] as number;
    const expected: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          const keys = Array.from({ length: t + 1 }, (_, j) => j).filter((j) => mask[b * T + j] === 1);
          const scores = keys.map((j) => Array.from({ length: dh }, (_, c) => at(b, t, 0, h, c) * at(b, j, 1, h, c)).reduce((x, y) => x + y) / Math.sqrt(dh));
          const max = Math.max(...scores);
          const w = scores.map((s) => Math.exp(s - max));
          const z = w.reduce((x, y) => x + y);
          for (let c = 0; c < dh; c++) expected.push(keys.reduce((acc, j, k) => acc + ((w[k] as number) / z) * at(b, j, 2, h, c), 0));
        }
      }
    }
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-5);
  });

  it('log-softmax and next-token cross-entropy', () => {
    const x = [0.5, -1, 2, 0, 3, 1];
    const ls = tf.tidy(() => Array.from(logSoftmax(tf.tensor2d(x, [2, 3])).dataSync()));
    const byHand = [0, 1].flatMap((r) => {
      const row = x.slice(r * 3, r * 3 + 3);
      const z = Math.log(row.reduce((a, b) => a + Math.exp(b), 0));
      return row.map((v) => v - z);
    });
    expect(maxAbsDiff(ls, byHand)).toBeLessThan(1e-6);
    const ce = tf.tidy(() => Array.from(sparseCrossEntropy(tf.tensor2d(x, [2, 3]), tf.tensor1d([2, 0], 'int32')).dataSync()));
    expect(maxAbsDiff(ce, [-(byHand[2] as number), -(byHand[3] as number)])).toBeLessThan(1e-6);
    expect(() => sparseCrossEntropy(tf.zeros([2, 3]), tf.zeros([3], 'int32'))).toThrow('cross-entropy targets');
  });
});

describe('KV cache (tensor form)', () => {
  const options = { batchSize: 2, capacity: 5, layers: 1, heads: 1, headSize: 2 };
  const qkv = (rows: number) => tf.tensor2d(randoms(rows * 6), [rows, 6]);

  it('is the portable cache where no kernel is registered', () => {
    const cache = createKvCache(options);
    expect(cache).toBeInstanceOf(TensorKvCache);
    cache.dispose();
  });

  it("places real slots at each row's next positions and grows rows by their own real slots", () => {
    const cache = createKvCache(options);
    const x = qkv(6);
    const positions = cache.advance([0, 1, 1, 1, 1, 0], 3, (step) => {
      tf.tidy(() => step.attend(0, x));
      return Array.from(step.positions);
    });
    expect(positions).toEqual([0, 0, 1, 0, 1, 2]); // padding slots repeat a neighbour's position
    expect(cache.lengths).toEqual([2, 2]);
    cache.rollback([1, undefined]);
    expect(cache.lengths).toEqual([1, 2]);
    x.dispose();
    cache.dispose();
  });

  it('refuses bad steps and rollbacks, and a failed step changes nothing', () => {
    const cache = createKvCache(options);
    const x = qkv(6);
    expect(() => cache.advance([1, 1], 3, () => 0)).toThrow('decode mask has 2 entries, expected 2 rows x 3 columns');
    expect(() => cache.advance(undefined, 6, () => 0)).toThrow('row 0: 6 more tokens exceed the 5 the decode state was started for (it holds 0)');
    expect(() =>
      cache.advance(undefined, 3, (step) => {
        tf.tidy(() => step.attend(0, x));
        throw new Error('the model failed half-way');
      }),
    ).toThrow('half-way');
    expect(cache.lengths).toEqual([0, 0]);
    expect(() => cache.rollback([1])).toThrow('rollback needs one entry per row (2), got 1');
    expect(() => cache.rollback([1, 0])).toThrow('cannot roll row 0 back to 1 tokens: it holds 0');
    expect(() => createKvCache({ ...options, capacity: 0 })).toThrow('KV cache capacity must be an integer >= 1, got 0');
    x.dispose();
    cache.dispose();
  });

  it('frees every tensor it made', async () => {
    const x = qkv(6);
    expect(
      await tensorsLeakedBy(() => {
        const cache = createKvCache({ ...options, capacity: 8 });
        for (let i = 0; i < 3; i++) cache.advance([1, 0, 0, 1, 1, 0], 3, (step) => tf.tidy(() => step.attend(0, x).dataSync()));
        cache.rollback([0, 1]);
        cache.dispose();
      }),
    ).toBe(0);
    x.dispose();
  });
});
