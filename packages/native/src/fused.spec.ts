import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, Rng } from '@skd/core';
import {
  adamWUpdate,
  causalSelfAttention,
  chooseTokenWith,
  createKvCache,
  forwardKlFromLogits,
  gatedActivation,
  gatherHalf,
  gelu,
  HalfMatrix,
  KERNELS,
  layerNorm,
  linear,
  linearHalf,
  logSoftmax,
  mixtureKlFromLogits,
  rmsNorm,
  rotary,
  rotaryFrequencies,
  sampleTokens,
  sparseCrossEntropy,
  type KvCache,
  type SamplingOptions,
} from '@skd/ops';
import { loadAddon } from './addon';
import { registerNativeKernels, unregisterNativeKernels } from './index';

// Every fused op of @skd/ops runs either as one native kernel (registered here) or as its composite
// form from stock wasm kernels (after unregisterNativeKernels). Both must agree: values and
// gradients within 1e-5, relative to the largest reference entry.
const TOL = 1e-5;

const available = loadAddon().addon !== undefined;

function normRelDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

const randoms = (rng: Rng, n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

/** Runs `fn` with the native kernels, then with the stock composite forms; returns both results. */
function bothWays<T>(fn: () => T): { native: T; stock: T } {
  registerNativeKernels();
  const native = fn();
  unregisterNativeKernels();
  try {
    return { native, stock: fn() };
  } finally {
    registerNativeKernels();
  }
}

/** Values of `f` and its gradients in every input, as flat arrays (upstream gradient: a fixed random tensor). */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: () => tf.Tensor[], upstream: Float32Array): number[][] {
  return tf.tidy(() => {
    const xs = inputs();
    const y = f(...xs);
    const r = tf.tensor(upstream.subarray(0, y.size), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), r)))(xs);
    return [Array.from(y.dataSync()), ...grads.map((g) => Array.from(g.dataSync()))];
  });
}

function expectClose(both: { native: number[][]; stock: number[][] }, tol = TOL): void {
  expect(both.native).toHaveLength(both.stock.length);
  both.native.forEach((values, i) => expect(normRelDiff(values, both.stock[i] as number[])).toBeLessThan(tol));
}

/** a KL(P || M) + b KL(Q || M) per row and its gradient in the logits (upstream `dy`), in float64. */
function mixtureReference(
  logP: Float32Array,
  logits: Float32Array,
  V: number,
  mixture: { teacherWeight: number; teacherTerm: number; studentTerm: number },
  dy: Float32Array,
): { values: number[]; grads: number[] } {
  const { teacherWeight: w, teacherTerm: a, studentTerm: b } = mixture;
  const values: number[] = [];
  const grads: number[] = [];
  for (let r = 0; r < logits.length / V; r++) {
    const x = Array.from(logits.subarray(r * V, (r + 1) * V));
    const top = Math.max(...x);
    const lse = top + Math.log(x.reduce((t, v) => t + Math.exp(v - top), 0));
    const q = x.map((v) => Math.exp(v - lse));
    const p = Array.from(logP.subarray(r * V, (r + 1) * V), Math.exp);
    const m = q.map((qi, i) => w * (p[i] as number) + (1 - w) * qi);
    const xlogy = (u: number, v: number) => (u > 0 ? u * Math.log(u / v) : 0);
    values.push(p.reduce((t, pi, i) => t + a * xlogy(pi, m[i] as number) + b * xlogy(q[i] as number, m[i] as number), 0));
    const g = q.map((qi, i) => (qi > 0 ? (-(1 - w) * (a * (p[i] as number) + b * qi)) / (m[i] as number) + b * Math.log(qi / (m[i] as number)) : 0));
    const qg = q.reduce((t, qi, i) => t + qi * (g[i] as number), 0);
    q.forEach((qi, i) => grads.push((dy[r] as number) * qi * ((g[i] as number) - qg)));
  }
  return { values, grads };
}

async function leaks(fn: () => unknown): Promise<number> {
  fn();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 10; i++) fn();
  return tf.memory().numTensors - before;
}

beforeAll(async () => {
  await tf.ready();
  await tf.setBackend('wasm');
  registerNativeKernels();
});
afterAll(() => unregisterNativeKernels());

(available ? describe : describe.skip)('fused ops: native kernel = composite form on wasm', () => {
  const rng = Rng.create(11);
  const upstream = randoms(rng, 1 << 18);

  it('registers a kernel for every fused op, and the ops use it', () => {
    for (const name of Object.values(KERNELS)) expect(tf.getKernel(name, 'wasm')).toBeDefined();
    const spy = jest.spyOn(tf.engine(), 'runKernel');
    tf.tidy(() => layerNorm(tf.ones([2, 3]), tf.ones([3]), tf.zeros([3]), 1e-5));
    expect(spy.mock.calls.some(([name]) => name === KERNELS.layerNorm)).toBe(true);
    spy.mockRestore();
  });

  it.each([
    [5, 7, 3, true, true],
    [1, 4, 9, true, false],
    [33, 16, 24, false, true],
    [600, 64, 200, false, false],
  ])('linear (%i x %i -> %i, bias %s, residual %s): values and gradients in every input', (n, nIn, nOut, withBias, withResidual) => {
    const x = randoms(rng, n * nIn);
    const w = randoms(rng, nIn * nOut);
    const b = randoms(rng, nOut);
    const r = randoms(rng, n * nOut);
    const inputs = () => [
      tf.tensor2d(x, [n, nIn]),
      tf.tensor2d(w, [nIn, nOut]),
      ...(withBias ? [tf.tensor1d(b)] : []),
      ...(withResidual ? [tf.tensor2d(r, [n, nOut])] : []),
    ];
    const f = (...xs: tf.Tensor[]) =>
      linear(
        xs[0] as tf.Tensor2D,
        xs[1] as tf.Tensor2D,
        withBias ? (xs[2] as tf.Tensor1D) : undefined,
        withResidual ? (xs[withBias ? 3 : 2] as tf.Tensor2D) : undefined,
      );
    expectClose(bothWays(() => valueAndGrads(f, inputs, upstream)));
  });

  // Their own generator: the draws of the tests after them stay as they were.
  const ownRng = Rng.create(23);

  it.each([
    [5, 300, 200, false, true, true, 'bfloat16'],
    [1, 257, 129, true, false, false, 'float16'],
    [70, 64, 520, false, false, true, 'float16'],
    [3, 96, 1000, true, true, false, 'bfloat16'],
    [300, 513, 260, false, true, false, 'bfloat16'],
    [8, 33, 70, false, true, true, 'float16'],
    [8, 40, 45, true, false, true, 'bfloat16'],
    [9, 64, 96, true, false, false, 'float16'],
    // 17-32 rows: SKD's block verification (a few rows times a block of drafts).
    [24, 100, 77, true, true, true, 'bfloat16'],
    [32, 50, 70, false, false, true, 'float16'],
    [17, 40, 33, false, true, false, 'bfloat16'],
    [31, 70, 65, true, false, true, 'float16'],
    // Stored (out, in) with more rows and columns: several column blocks, split across threads.
    [40, 300, 500, true, true, true, 'bfloat16'],
    [100, 200, 130, true, false, true, 'float16'],
    // Depth 57: three 16-lane steps, then nine values one by one.
    [6, 57, 40, true, false, true, 'bfloat16'],
  ] as const)(
    'linear over a 16-bit weight (%i x %i -> %i, transposed %s, bias %s, residual %s, %s): values and gradients in x and the residual',
    (n, nIn, nOut, transposed, withBias, withResidual, dtype) => {
      const x = randoms(ownRng, n * nIn);
      const w = HalfMatrix.fromFloat32(randoms(ownRng, nIn * nOut, 0.05), transposed ? [nOut, nIn] : [nIn, nOut], dtype);
      const b = randoms(ownRng, nOut);
      const r = randoms(ownRng, n * nOut);
      const inputs = () => [tf.tensor2d(x, [n, nIn]), ...(withResidual ? [tf.tensor2d(r, [n, nOut])] : [])];
      const f = (...xs: tf.Tensor[]) =>
        linearHalf(xs[0] as tf.Tensor2D, w, {
          transposed,
          ...(withBias ? { bias: tf.tensor1d(b) } : {}),
          ...(withResidual ? { residual: xs[1] as tf.Tensor2D } : {}),
        });
      expectClose(bothWays(() => valueAndGrads(f, inputs, upstream)));
      // And the float32 product with the widened weight, as the fused dense layer computes it.
      const dense = tf.tidy(() => {
        const full = w.toTensor();
        const y = linear(
          tf.tensor2d(x, [n, nIn]),
          transposed ? tf.transpose(full) : full,
          withBias ? tf.tensor1d(b) : undefined,
          withResidual ? tf.tensor2d(r, [n, nOut]) : undefined,
        );
        return Array.from(y.dataSync());
      });
      expect(
        normRelDiff(
          tf.tidy(() => Array.from(f(...inputs()).dataSync())),
          dense,
        ),
      ).toBeLessThan(TOL);
    },
  );

  it.each(['bfloat16', 'float16'] as const)('rows of a 16-bit table (%s) are its widened rows; an index out of range fails', (dtype) => {
    const table = HalfMatrix.fromFloat32(randoms(ownRng, 50 * 24), [50, 24], dtype);
    const ids = [3, 0, 49, 3, 17];
    const both = bothWays(() => tf.tidy(() => Array.from(gatherHalf(table, tf.tensor1d(ids, 'int32')).dataSync())));
    const widened = table.toFloat32();
    const expected = ids.flatMap((i) => Array.from(widened.subarray(i * 24, (i + 1) * 24)));
    expect(both.native).toEqual(expected);
    expect(both.stock).toEqual(expected);
    expect(() => tf.tidy(() => gatherHalf(table, tf.tensor1d([2, 50], 'int32')))).toThrow(/gather index 50 \(position 1\) is outside \[0, 50\)/);
  });

  it.each([
    [7, 13],
    [1, 5],
    [64, 384],
  ])('LayerNorm (%i, %i): values and gradients in x, gamma, beta', (n, d) => {
    const x = randoms(rng, n * d, 3);
    const gamma = randoms(rng, d);
    const beta = randoms(rng, d);
    const inputs = () => [tf.tensor2d(x, [n, d]), tf.tensor1d(gamma), tf.tensor1d(beta)];
    expectClose(bothWays(() => valueAndGrads((a, g, b) => layerNorm(a as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), inputs, upstream)));
  });

  it.each([[[5, 17]], [[3, 4, 7]], [[4096]]])('GELU %j: values and gradients, any rank', (shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = randoms(rng, size, 4);
    expectClose(
      bothWays(() =>
        valueAndGrads(
          (a) => gelu(a),
          () => [tf.tensor(x, shape)],
          upstream,
        ),
      ),
    );
  });

  it.each([
    [7, 13, 0],
    [64, 384, 1],
    [1, 5, 1],
  ])('RMSNorm (%i, %i, offset %i): values and gradients in x and the weight', (n, d, offset) => {
    const x = randoms(rng, n * d, 3);
    const w = randoms(rng, d);
    const inputs = () => [tf.tensor2d(x, [n, d]), tf.tensor1d(w)];
    expectClose(bothWays(() => valueAndGrads((a, g) => rmsNorm(a as tf.Tensor2D, g as tf.Tensor1D, 1e-6, offset), inputs, upstream)));
  });

  it.each([
    ['silu', 9, 11],
    ['gelu', 9, 11],
    ['gelu_tanh', 64, 300],
  ] as const)('gated activation (%s, %i x 2 x %i): values and gradients', (activation, n, f) => {
    const x = randoms(rng, n * 2 * f, 3);
    expectClose(
      bothWays(() =>
        valueAndGrads(
          (a) => gatedActivation(a as tf.Tensor2D, activation),
          () => [tf.tensor2d(x, [n, 2 * f])],
          upstream,
        ),
      ),
    );
  });

  it.each([
    [4, 2, 8, 10000, undefined],
    [3, 1, 16, 500000, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 }],
    [2, 2, 6, 10000, { type: 'linear', factor: 2 }],
  ] as const)('rotary positions (%i heads, %i kv heads of %i, theta %i, scaling %j): values and gradients', (heads, kvHeads, dh, theta, scaling) => {
    const N = 11;
    const width = (heads + 2 * kvHeads) * dh;
    const qkv = randoms(rng, N * width);
    const positions = Int32Array.from({ length: N }, (_, i) => (i * 37) % 300);
    const frequencies = rotaryFrequencies(dh, theta, scaling);
    const f = (x: tf.Tensor) => rotary(x as tf.Tensor2D, tf.tensor1d(positions, 'int32'), tf.tensor1d(frequencies), { heads, kvHeads, headDim: dh });
    expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor2d(qkv, [N, width])], upstream)));
  });

  describe('grouped-query attention, soft-capped and windowed', () => {
    it.each([
      [2, 9, 4, 2, 4, 0, 0],
      [1, 70, 6, 2, 8, 50, 0],
      [2, 70, 2, 1, 4, 0, 5],
      [2, 13, 4, 1, 2, 5, 3],
    ])('B %i, T %i, %i heads over %i kv heads of %i, softcap %i, window %i: values and gradients', (B, T, heads, kvHeads, dh, softcap, window) => {
      const width = (heads + 2 * kvHeads) * dh;
      const qkv = randoms(rng, B * T * width);
      const mask = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b === 1 && t >= T - 2 ? 0 : 1)));
      const f = (x: tf.Tensor) => causalSelfAttention(x as tf.Tensor2D, { batch: B, heads, kvHeads, scale: 0.3, softcap, window, mask: tf.tensor2d(mask) });
      expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor2d(qkv, [B * T, width])], upstream)));
    });
  });

  describe('causal self-attention over packed q|k|v', () => {
    // T = 70 crosses the kernel's 64-query blocks; T = 7 and 1 are odd and tiny.
    it.each([
      [2, 7, 3, 4],
      [1, 70, 2, 8],
      [3, 1, 1, 2],
    ])('B %i, T %i, %i heads of %i: values and gradients', (B, T, heads, dh) => {
      const qkv = randoms(rng, B * T * 3 * heads * dh);
      const f = (x: tf.Tensor) => causalSelfAttention(x as tf.Tensor2D, { batch: B, heads });
      expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor2d(qkv, [B * T, 3 * heads * dh])], upstream)));
    });

    it('right and left padding masks: equal at every query that sees a real key, gradients included', () => {
      const [B, T, heads, dh] = [3, 9, 2, 4];
      const mask = [
        [1, 1, 1, 1, 1, 1, 0, 0, 0], // right-padded (training batches)
        [0, 0, 0, 1, 1, 1, 1, 1, 1], // left-padded (prompts): queries 0-2 see no real key
        [1, 0, 1, 1, 0, 1, 1, 1, 1], // holes
      ];
      // Queries that see no real key have unspecified outputs (0 natively); the loss weights them 0.
      const seesKey = mask.map((row) => row.map((_, t) => (row.slice(0, t + 1).some((m) => m === 1) ? 1 : 0)));
      const qkv = randoms(rng, B * T * 3 * heads * dh);
      const weight = Float32Array.from(
        { length: B * T * heads * dh },
        (_, i) => (seesKey.flat()[Math.floor(i / (heads * dh))] as number) * (upstream[i] as number),
      );
      const f = (x: tf.Tensor) =>
        tf.mul(causalSelfAttention(x as tf.Tensor2D, { batch: B, heads, mask: tf.tensor2d(mask) }), tf.tensor2d(weight, [B * T, heads * dh]));
      expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor2d(qkv, [B * T, 3 * heads * dh])], upstream)));
    });

    it('the mask matters: a padding key changes what a later query sees', () => {
      const qkv = tf.tensor2d(randoms(rng, 4 * 6), [4, 6]);
      const run = (mask?: number[][]) =>
        tf.tidy(() => Array.from(causalSelfAttention(qkv, { batch: 1, heads: 1, ...(mask ? { mask: tf.tensor2d(mask) } : {}) }).dataSync()));
      expect(normRelDiff(run([[1, 0, 1, 1]]), run())).toBeGreaterThan(1e-3);
      qkv.dispose();
    });
  });

  it('log-softmax over the last axis, -inf entries included: values and gradients', () => {
    const x = randoms(rng, 3 * 5 * 11, 3);
    x[7] = -Infinity;
    const both = bothWays(() =>
      valueAndGrads(
        (a) => tf.where(tf.isFinite(a), logSoftmax(a), tf.zerosLike(a)),
        () => [tf.tensor(x, [3, 5, 11])],
        upstream,
      ),
    );
    expectClose(both);
  });

  it('next-token cross-entropy: values and gradients; a target outside the vocabulary is an error', () => {
    const [B, T, V] = [2, 5, 37];
    const logits = randoms(rng, B * T * V, 2);
    const targets = Int32Array.from({ length: B * T }, () => rng.int(V));
    const f = (x: tf.Tensor) => sparseCrossEntropy(x, tf.tensor2d(targets, [B, T], 'int32'));
    expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor3d(logits, [B, T, V])], upstream)));
    expect(() => tf.tidy(() => sparseCrossEntropy(tf.zeros([1, 2, 4]), tf.tensor2d([[0, 4]], [1, 2], 'int32')))).toThrow(
      'target 4 (position 1) is outside the vocabulary [0, 4)',
    );
  });

  it.each([
    [2, 5, 37],
    [3, 7, 4000],
  ])('forward KL from teacher log-probs and student logits (%i, %i, %i): values and gradients; no teacher mass gives 0 terms', (B, T, V) => {
    const logits = randoms(rng, B * T * V, 3);
    const teacher = tf.tidy(() =>
      tf
        .logSoftmax(tf.tensor3d(randoms(rng, B * T * V, 3), [B, T, V]))
        .dataSync()
        .slice(),
    );
    // A masked teacher vocabulary entry (no mass) and one where only the student has almost none.
    teacher[V + 3] = -Infinity;
    logits[5] = -50;
    const logP = () => tf.tensor3d(teacher, [B, T, V]);
    const f = (x: tf.Tensor) => forwardKlFromLogits(logP(), x);
    expectClose(bothWays(() => valueAndGrads(f, () => [tf.tensor3d(logits, [B, T, V])], upstream)));
    // A student whose logits are the teacher's log-probs: 0 up to the rounding of its logsumexp.
    const self = tf.tidy(() => Array.from(forwardKlFromLogits(logP(), logP()).dataSync()));
    expect(Math.max(...self.map(Math.abs))).toBeLessThan(1e-5);
  });

  describe.each([
    ['JSD(0.5)', { teacherWeight: 0.5, teacherTerm: 0.5, studentTerm: 0.5 }],
    ['JSD(0.9)', { teacherWeight: 0.9, teacherTerm: 0.9, studentTerm: 0.1 }],
    ['skew KL(0.1)', { teacherWeight: 0.1, teacherTerm: 1, studentTerm: 0 }],
    ['skew reverse KL(0.1)', { teacherWeight: 0.9, teacherTerm: 0, studentTerm: 1 }],
  ])('%s to the teacher-student mixture from student logits', (_, mixture) => {
    it.each([
      [2, 5, 37],
      [3, 7, 4000],
    ])('(%i, %i, %i): value and gradient equal a float64 reference; the composite form agrees', (B, T, V) => {
      const logits = randoms(rng, B * T * V, 3);
      const teacher = tf.tidy(
        () =>
          tf
            .logSoftmax(tf.tensor3d(randoms(rng, B * T * V, 3), [B, T, V]))
            .dataSync()
            .slice() as Float32Array,
      );
      teacher[V + 3] = -Infinity; // a masked teacher entry
      logits[5] = -60; // the student has almost no mass where the teacher has some
      logits[2 * V + 1] = 40; // and nearly all of its row's mass on one entry (d far beyond the switch)
      const f = (x: tf.Tensor) => mixtureKlFromLogits(tf.tensor3d(teacher, [B, T, V]), x, mixture);
      const both = bothWays(() => valueAndGrads(f, () => [tf.tensor3d(logits, [B, T, V])], upstream));
      const reference = mixtureReference(teacher, logits, V, mixture, upstream);
      expect(normRelDiff(both.native[0] as number[], reference.values)).toBeLessThan(TOL);
      expect(normRelDiff(both.native[1] as number[], reference.grads)).toBeLessThan(TOL);
      // The composite form sums its float32 terms less exactly (3e-5 from float64 at V = 4000, the native one 5e-6).
      expectClose(both, 1e-4);
    });

    it('is 0 for a student equal to the teacher, and finite where neither has mass', () => {
      const V = 50;
      const logP = tf.tidy(() => tf.logSoftmax(tf.concat([tf.tensor2d(randoms(rng, 2 * (V - 1), 3), [2, V - 1]), tf.fill([2, 1], -Infinity)], 1)));
      const values = tf.tidy(() => Array.from(mixtureKlFromLogits(logP, tf.where(tf.isFinite(logP), logP, tf.fill([2, V], -1e4)), mixture).dataSync()));
      expect(Math.max(...values.map(Math.abs))).toBeLessThan(1e-6);
      const grad = tf.tidy(() =>
        Array.from(
          tf
            .grad((x: tf.Tensor) => tf.sum(mixtureKlFromLogits(logP, x, mixture)))(tf.fill([2, V], 0))
            .dataSync(),
        ),
      );
      expect(grad.every(Number.isFinite)).toBe(true);
      logP.dispose();
    });
  });

  it.each([
    [0, 1],
    [0.1, 3],
  ])('AdamW (decay %f, step %i) gives the composite update', (weightDecay, t) => {
    const n = 1000;
    const [p, g, m, v] = [randoms(rng, n), randoms(rng, n), randoms(rng, n, 0.1), Float32Array.from(randoms(rng, n, 0.1), Math.abs)];
    const step = { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay, correction1: 1 - 0.9 ** t, correction2: 1 - 0.999 ** t };
    const run = () => tf.tidy(() => adamWUpdate(tf.tensor(p), tf.tensor(g), tf.tensor(m), tf.tensor(v), step).map((x) => Array.from(x.dataSync())));
    expectClose(bothWays(run));
  });

  it('AdamW in place: the same update written over storage of its own; shared or repeated storage gets new tensors', () => {
    const n = 600;
    const [p, g, m, v] = [randoms(ownRng, n), randoms(ownRng, n), randoms(ownRng, n, 0.1), Float32Array.from(randoms(ownRng, n, 0.1), Math.abs)];
    const step = { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, correction1: 0.1, correction2: 0.001 };
    tf.tidy(() => {
      const expected = adamWUpdate(tf.tensor(p), tf.tensor(g), tf.tensor(m), tf.tensor(v), step).map((x) => Array.from(x.dataSync()));
      const inputs = [tf.tensor(p), tf.tensor(g), tf.tensor(m), tf.tensor(v)] as const;
      const out = adamWUpdate(...inputs, step, { inPlace: true });
      expect(out.map((x) => Array.from(x.dataSync()))).toEqual(expected);
      // Written over the inputs' own storage: param, m and v now read the new values.
      expect(out.map((x) => x.dataId)).toEqual([inputs[0].dataId, inputs[2].dataId, inputs[3].dataId]);
      expect(Array.from(inputs[0].dataSync())).toEqual(expected[0]);
      // A clone shares the parameter's storage: it keeps its values, and the update gets new storage.
      const param = tf.tensor(p);
      const clone = tf.clone(param);
      const shared = adamWUpdate(param, tf.tensor(g), tf.tensor(m), tf.tensor(v), step, { inPlace: true });
      expect(shared[0].dataId).not.toBe(param.dataId);
      expect(Array.from(clone.dataSync())).toEqual(Array.from(p));
      expect(Array.from(shared[0].dataSync())).toEqual(expected[0]);
      // One tensor as two inputs is never overwritten.
      const x = tf.tensor(m);
      const repeated = adamWUpdate(x, tf.tensor(g), x, tf.tensor(v), step, { inPlace: true });
      expect(repeated[0].dataId).not.toBe(x.dataId);
      expect(Array.from(x.dataSync())).toEqual(Array.from(m));
    });
  });

  it('token sampling on the device picks exactly the tokens chooseToken picks for the same draws', async () => {
    const V = 97;
    const settings: SamplingOptions[] = [
      { greedy: true },
      {},
      { temperature: 0.7 },
      { topK: 5 },
      { topP: 0.8 },
      { temperature: 1.3, topK: 20, topP: 0.9 },
      { topK: 200 },
    ];
    for (const options of settings) {
      const rows = 40;
      const data = randoms(rng, rows * V, 2.5);
      data[3] = data[4] as number; // a tie
      const logits = tf.tensor2d(data, [rows, V]);
      const draws = Rng.create(5);
      const ids = await sampleTokens(logits, options, Rng.create(5));
      const expected = Array.from({ length: rows }, (_, b) => chooseTokenWith(data.subarray(b * V, (b + 1) * V), options, options.greedy ? 0 : draws.random()));
      expect(Array.from(ids)).toEqual(expected);
      logits.dispose();
    }
  });

  it('token sampling fails like chooseToken on NaN and on a row without mass', async () => {
    const nan = tf.tensor2d([
      [0, 1, 2],
      [0, Number.NaN, 1],
    ]);
    await expect(sampleTokens(nan, {}, Rng.create(1))).rejects.toThrow(NonFiniteError);
    const empty = tf.tensor2d([[-Infinity, -Infinity]]);
    await expect(sampleTokens(empty, {}, Rng.create(1))).rejects.toThrow('every logit is -inf');
    tf.dispose([nan, empty]);
  });

  it("the native KV cache gives the tensor cache's outputs through ragged steps and rollbacks", () => {
    const [B, heads, dh, layers] = [2, 2, 4, 1];
    const d = heads * dh;
    const steps: { mask: number[]; S: number; rollback?: (number | undefined)[] }[] = [
      { mask: [0, 1, 1, 1, 1, 1], S: 3 }, // left-padded prompt
      { mask: [1, 1, 1, 1, 0, 0], S: 3, rollback: [3, undefined] },
      { mask: [0, 1, 1, 1], S: 2 },
      { mask: [1, 1], S: 1, rollback: [undefined, 4] },
      { mask: [1, 1, 1, 1, 1, 1], S: 3 },
    ];
    const qkvs = steps.map((s) => randoms(rng, B * s.S * 3 * d));
    const run = () => {
      const cache: KvCache = createKvCache({ batchSize: B, capacity: 12, layers, heads, headSize: dh });
      const outputs: number[][] = [];
      steps.forEach((s, i) => {
        const out = cache.advance(s.mask, s.S, (step) =>
          tf.tidy(() => Array.from(step.attend(0, tf.tensor2d(qkvs[i] as Float32Array, [B * s.S, 3 * d])).dataSync())),
        );
        outputs.push(out.map((x, j) => ((s.mask[Math.floor(j / d)] as number) ? x : 0))); // padding slots are unspecified
        if (s.rollback) cache.rollback(s.rollback);
      });
      expect(cache.constructor.name).toBe(tf.getKernel(KERNELS.cachedAttention, 'wasm') ? 'NativeKvCache' : 'TensorKvCache');
      cache.dispose();
      return outputs;
    };
    expectClose(bothWays(run));
  });

  it.each([
    [4, 2, 0, [0, 0]],
    [4, 1, 20, [0, 3]],
    [8, 1, 0, [2, 0]], // a group's 8 query heads x 3 new tokens as one product
  ])("the native KV cache with %i heads over %i kv heads (softcap %i, windows %j) gives the tensor cache's outputs", (heads, kvHeads, softcap, windows) => {
    const [B, dh, layers] = [2, 4, 2];
    const width = (heads + 2 * kvHeads) * dh;
    const d = heads * dh;
    const steps: { mask: number[]; S: number; rollback?: (number | undefined)[] }[] = [
      { mask: [0, 1, 1, 1, 1, 1], S: 3 },
      { mask: [1, 1, 1, 1, 0, 0], S: 3, rollback: [4, undefined] },
      { mask: [0, 1, 1, 1], S: 2 },
      { mask: [1, 1, 1, 1, 1, 1], S: 3 },
    ];
    const qkvs = steps.map((s) => randoms(rng, layers * B * s.S * width));
    const run = () => {
      const cache: KvCache = createKvCache({ batchSize: B, capacity: 12, layers, heads, kvHeads, headSize: dh, scale: 0.4, softcap, windows });
      const outputs: number[][] = [];
      steps.forEach((s, i) => {
        const out = cache.advance(s.mask, s.S, (step) =>
          tf.tidy(() =>
            Array.from({ length: layers }, (_, layer) =>
              Array.from(
                step
                  .attend(layer, tf.tensor2d((qkvs[i] as Float32Array).subarray(layer * B * s.S * width, (layer + 1) * B * s.S * width), [B * s.S, width]))
                  .dataSync(),
              ),
            ).flat(),
          ),
        );
        outputs.push(out.map((x, j) => ((s.mask[Math.floor((j % (B * s.S * d)) / d)] as number) ? x : 0)));
        if (s.rollback) cache.rollback(s.rollback);
      });
      cache.dispose();
      return outputs;
    };
    expectClose(bothWays(run));
  });

  it('keeps numTensors flat: every op forward and backward, the cache, sampling', async () => {
    const x = tf.randomNormal([6, 12]);
    const targets = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    const half = HalfMatrix.fromFloat32(new Float32Array(144).fill(0.5), [12, 12], 'bfloat16');
    const ops = () =>
      tf.tidy(() => {
        tf.grads((a: tf.Tensor) => tf.sum(layerNorm(a as tf.Tensor2D, tf.ones([12]), tf.zeros([12]), 1e-5)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(gelu(a)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(rmsNorm(a as tf.Tensor2D, tf.ones([12]), 1e-6, 1)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(gatedActivation(a as tf.Tensor2D, 'silu')))([x]);
        tf.grads((a: tf.Tensor) =>
          tf.sum(rotary(a as tf.Tensor2D, tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32'), tf.ones([1]), { heads: 2, kvHeads: 2, headDim: 2 })),
        )([x]);
        tf.grads((a: tf.Tensor, w: tf.Tensor) => tf.sum(linear(a as tf.Tensor2D, w as tf.Tensor2D, tf.zeros([12]), a as tf.Tensor2D)))([x, tf.eye(12)]);
        tf.grads((a: tf.Tensor) => tf.sum(linearHalf(a as tf.Tensor2D, half, { bias: tf.zeros([12]), residual: a as tf.Tensor2D })))([x]);
        gatherHalf(half, targets);
        tf.grads((a: tf.Tensor) => tf.sum(causalSelfAttention(a as tf.Tensor2D, { batch: 2, heads: 2, mask: tf.ones([2, 3]) })))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(logSoftmax(a)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(sparseCrossEntropy(a, targets)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(forwardKlFromLogits(tf.logSoftmax(x), a)))([x]);
        tf.grads((a: tf.Tensor) => tf.sum(mixtureKlFromLogits(tf.logSoftmax(x), a, { teacherWeight: 0.5, teacherTerm: 0.5, studentTerm: 0.5 })))([x]);
        adamWUpdate(x, x, x, tf.abs(x), { learningRate: 1, beta1: 0.9, beta2: 0.9, epsilon: 1e-8, weightDecay: 0.1, correction1: 1, correction2: 1 });
      });
    expect(await leaks(ops)).toBe(0);
    const cache = () => {
      const c = createKvCache({ batchSize: 2, capacity: 8, layers: 1, heads: 2, headSize: 2 });
      c.advance([1, 1, 0, 1], 2, (step) => tf.tidy(() => step.attend(0, tf.slice(x, [0, 0], [4, 12]) as tf.Tensor2D).dataSync()));
      c.rollback([1, undefined]);
      c.dispose();
    };
    expect(await leaks(cache)).toBe(0);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) await sampleTokens(x as tf.Tensor2D, { temperature: 0.9, topK: 3 }, Rng.create(i));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, targets]);
  });
});
