import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { KERNELS } from '@skd/ops';
import { ADDON_PATH, loadAddon } from './addon';
import { broadcastBatchOffsets, registerNativeKernels, unregisterNativeKernels } from './index';

// Reference values come from the cpu backend, computed from the same JS arrays.
const TOL = 1e-4; // relative to the magnitude of the entries (float32 sums of up to ~64 products)

function randomArray(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

async function on<T>(backend: 'cpu' | 'wasm', fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  return fn();
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)) / (1 + Math.abs(b[i] as number)));
  return max;
}

const available = loadAddon().addon !== undefined;

/** Plain-JS reference: op(a) @ op(b) with NumPy batch broadcasting. Returns [shape, values]. */
function referenceMatmul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], ta: boolean, tb: boolean): [number[], number[]] {
  const ar = aShape.length;
  const br = bShape.length;
  const [aRows, aCols] = [aShape[ar - 2] as number, aShape[ar - 1] as number];
  const [bRows, bCols] = [bShape[br - 2] as number, bShape[br - 1] as number];
  const M = ta ? aCols : aRows;
  const K = ta ? aRows : aCols;
  const N = tb ? bRows : bCols;
  const { outBatch, aOffsets, bOffsets } = broadcastBatchOffsets(aShape.slice(0, -2), bShape.slice(0, -2), aRows * aCols, bRows * bCols);
  const out: number[] = [];
  aOffsets.forEach((ao, i) => {
    const bo = bOffsets[i] as number;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = a[ao + (ta ? k * aCols + m : m * aCols + k)] as number;
          const bv = b[bo + (tb ? n * bCols + k : k * bCols + n)] as number;
          sum += av * bv;
        }
        out.push(sum);
      }
    }
  });
  return [[...outBatch, M, N], out];
}

beforeAll(async () => {
  await tf.ready();
  await tf.setBackend('wasm');
  registerNativeKernels();
});
afterAll(() => unregisterNativeKernels());

describe('the addon', () => {
  it('is built and loads wherever a BLAS is installed (so CI never skips the native suite silently)', () => {
    const { findBlas } = require('../scripts/blas-flags.cjs') as { findBlas(): { name: string } | undefined };
    const blas = findBlas();
    if (blas && process.env['SKD_NATIVE'] !== 'off') {
      expect(loadAddon()).toMatchObject({ addon: expect.anything(), reason: expect.stringContaining(`${blas.name} addon loaded`) });
      expect(loadAddon().addon?.blas()).toBe(blas.name);
    } else expect(loadAddon().reason).toMatch(/SKD_NATIVE=off|apt-get install libdnnl-dev/);
  });
});

(available ? describe : describe.skip)('signals during kernels', () => {
  // oneDNN's JIT sgemm moves the stack pointer into heap memory (uxlfoundation/oneDNN#4845): a
  // signal handled meanwhile wrote over the heap. V8's profiler sends one every millisecond, so
  // profiling small products (decode steps, attention heads) crashed within seconds, as a Ctrl-C
  // or a child's exit could at any time. Every kernel now runs with signals blocked.
  it('runs thousands of small products under a 1 ms profiler tick and exits cleanly', () => {
    const script = `
      const addon = require(${JSON.stringify(loadAddon().file ?? ADDON_PATH)});
      const shapes = [[8, 192, 64], [64, 64, 16], [8, 256, 64], [48, 64, 256], [1, 64, 64]];
      const offsets = new Int32Array([0]);
      const kept = [];
      const start = Date.now();
      for (let k = 0; Date.now() - start < 2000; k++) {
        const [M, N, K] = shapes[k % shapes.length];
        const a = new Float32Array(M * K).fill(0.5), b = new Float32Array(K * N).fill(0.25), c = new Float32Array(M * N);
        addon.sgemmBatch(a, b, c, offsets, offsets, M, N, K, false, k % 2 === 0);
        if (c[0] !== 0.125 * K) throw new Error('wrong product ' + c[0]);
        kept.push(Buffer.alloc(1000 + (k % 50) * 100));
        if (kept.length > 200) kept.splice(0, 100);
      }
      console.log('ok');`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-signals-'));
    const result = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '-e', script], { encoding: 'utf8' });
    expect({ status: result.status, signal: result.signal, stdout: result.stdout.trim() }).toEqual({ status: 0, signal: null, stdout: 'ok' });
  });
});

describe('broadcastBatchOffsets', () => {
  it('pairs every output batch with the right input matrices', () => {
    const { outBatch, aOffsets, bOffsets } = broadcastBatchOffsets([2, 1], [1, 3], 10, 100);
    expect(outBatch).toEqual([2, 3]);
    expect(Array.from(aOffsets)).toEqual([0, 0, 0, 10, 10, 10]);
    expect(Array.from(bOffsets)).toEqual([0, 100, 200, 0, 100, 200]);
    expect(() => broadcastBatchOffsets([2], [3], 1, 1)).toThrow('do not broadcast');
  });
});

(available ? describe : describe.skip)('native BatchMatMul on wasm', () => {
  const rng = Rng.create(1);
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2D', [7, 5], [5, 3], false, false],
    ['2D transposeA', [5, 7], [5, 3], true, false],
    ['2D transposeB', [7, 5], [3, 5], false, true],
    ['2D both transposed', [5, 7], [3, 5], true, true],
    ['batched (attention scores)', [4, 3, 6, 8], [4, 3, 6, 8], false, true],
    ['batched both transposed', [2, 3, 8, 6], [2, 3, 5, 8], true, true],
    ['broadcast b over a batch', [4, 6, 5], [5, 3], false, false],
    ['broadcast a over b batch', [6, 5], [2, 5, 3], false, false],
    ['true batch broadcasting [2,1] x [1,3]', [2, 1, 4, 5], [1, 3, 5, 6], false, false],
    ['true broadcasting, transposed', [2, 1, 5, 4], [1, 3, 6, 5], true, true],
    ['empty inner dimension', [3, 0], [0, 4], false, false],
  ];

  it.each(cases)('%s matches a plain-JS reference and the stock kernel', async (name, aShape, bShape, ta, tb) => {
    const aData = randomArray(
      rng,
      aShape.reduce((x, y) => x * y, 1),
    );
    const bData = randomArray(
      rng,
      bShape.reduce((x, y) => x * y, 1),
    );
    const [shape, expected] = referenceMatmul(aData, aShape, bData, bShape, ta, tb);
    const run = () => tf.tidy(() => tf.matMul(tf.tensor(aData, aShape), tf.tensor(bData, bShape), ta, tb));
    await tf.setBackend('wasm');
    const actual = run();
    expect(actual.shape).toEqual(shape);
    expect(maxRelDiff(actual.dataSync(), expected)).toBeLessThan(TOL);
    actual.dispose();
    if (!name.startsWith('true')) {
      unregisterNativeKernels();
      const stock = tf.tidy(() => run().dataSync());
      registerNativeKernels();
      expect(maxRelDiff(stock, expected)).toBeLessThan(TOL);
    }
  });

  it('gives the same gradients as the cpu backend through transposed, batched matmuls', async () => {
    const aData = randomArray(rng, 2 * 3 * 4);
    const bData = randomArray(rng, 2 * 5 * 4);
    const grads = () =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, false, true)));
        const [ga, gb] = tf.grads(f)([tf.tensor(aData, [2, 3, 4]), tf.tensor(bData, [2, 5, 4])]);
        return [...(ga as tf.Tensor).dataSync(), ...(gb as tf.Tensor).dataSync()];
      });
    expect(maxRelDiff(await on('wasm', grads), await on('cpu', grads))).toBeLessThan(TOL);
  });

  it('is really the native kernel: the stock one gets true broadcasting wrong in tfjs 4.22', async () => {
    const aData = randomArray(rng, 2 * 4 * 5);
    const bData = randomArray(rng, 3 * 5 * 6);
    const run = () => tf.tidy(() => tf.matMul(tf.tensor(aData, [2, 1, 4, 5]), tf.tensor(bData, [1, 3, 5, 6])).dataSync());
    const [, expected] = referenceMatmul(aData, [2, 1, 4, 5], bData, [1, 3, 5, 6], false, false);
    await tf.setBackend('wasm');
    unregisterNativeKernels();
    const stock = run();
    registerNativeKernels();
    expect(maxRelDiff(run(), expected)).toBeLessThan(TOL);
    expect(stock.length !== expected.length || maxRelDiff(stock, expected) > 0.1).toBe(true);
  });

  it('takes heap views after allocating the output (heap growth would detach earlier views)', async () => {
    await tf.setBackend('wasm');
    const big = 1400; // a 7.8 MB output on a 16 MB initial heap forces growth
    const a = tf.ones([big, 8]);
    const b = tf.ones([big, 8]);
    const c = tf.matMul(a, b, false, true); // (big, big), every entry 8
    const data = c.dataSync();
    expect(data[0]).toBe(8);
    expect(data[data.length - 1]).toBe(8);
    tf.dispose([a, b, c]);
  });

  it('runs _FusedMatMul with bias and activations like the cpu backend', async () => {
    const aData = randomArray(rng, 6 * 4);
    const bData = randomArray(rng, 4 * 5);
    const biasData = randomArray(rng, 5);
    for (const activation of ['linear', 'relu', 'relu6', 'sigmoid', 'leakyrelu', 'elu'] as const) {
      const run = () =>
        tf.tidy(() =>
          tf.fused
            .matMul({ a: tf.tensor(aData, [6, 4]), b: tf.tensor(bData, [4, 5]), bias: tf.tensor(biasData, [5]), activation, leakyreluAlpha: 0.1 })
            .dataSync(),
        );
      expect(maxRelDiff(await on('wasm', run), await on('cpu', run))).toBeLessThan(TOL);
    }
  });

  it('registers only the JS segment sum as the stock baseline of the benchmark', async () => {
    await tf.setBackend('wasm');
    const status = registerNativeKernels({ stockBaseline: true });
    expect(status.native).toBe(false);
    expect(status.kernels).toEqual(['UnsortedSegmentSum']);
    expect(status.summary).toContain('stock baseline requested');
    const status2 = registerNativeKernels();
    expect(status2.kernels).toEqual([
      'Identity',
      'BatchMatMul',
      '_FusedMatMul',
      'Sum',
      'Tanh',
      'Sigmoid',
      'Square',
      'GatherV2',
      ...Object.values(KERNELS),
      'UnsortedSegmentSum',
    ]);
  });

  it('falls back to the stock kernel for non-float32 inputs', async () => {
    await tf.setBackend('wasm');
    expect(() => tf.matMul(tf.tensor2d([[1]], [1, 1], 'int32'), tf.tensor2d([[2]], [1, 1], 'int32'))).toThrow(/non-float32|not yet supported/);
  });
});

(available ? describe : describe.skip)('native Sum, Tanh, Sigmoid, Square and GatherV2 on wasm', () => {
  const rng = Rng.create(3);
  const x = randomArray(rng, 3 * 4 * 5 * 2).map((v) => v * 4);
  const run = (fn: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => Array.from(fn(tf.tensor(x, [3, 4, 5, 2])).dataSync()));
  const compare = async (fn: (t: tf.Tensor) => tf.Tensor, tol = TOL) => {
    const native = await on('wasm', () => run(fn));
    await tf.setBackend('wasm');
    unregisterNativeKernels();
    const stock = run(fn);
    registerNativeKernels();
    expect(native).toHaveLength(stock.length);
    expect(maxRelDiff(native, stock)).toBeLessThan(tol);
  };

  it.each([[0], [1], [3], [-1], [[0, 1]], [[1, 2]], [[1, 2, 3]], [[0, 2]], [[2, 0]], [null]] as (number | number[] | null)[][])(
    'Sum over axis %j (keepDims both ways) matches the stock kernel',
    async (axis) => {
      await compare((t) => tf.sum(t, axis ?? undefined));
      await compare((t) => tf.sum(t, axis ?? undefined, true));
    },
  );

  it('Tanh, Sigmoid and Square match the stock kernels over a wide range, keep NaN, saturate at +-inf (abs 2e-7)', async () => {
    await compare((t) => tf.tanh(t), 2e-7);
    await compare((t) => tf.sigmoid(t), 2e-7);
    await compare((t) => tf.square(t), 1e-12);
    const edge = () =>
      tf.tidy(() => [
        Array.from(tf.tanh(tf.tensor1d([Number.NaN, Infinity, -Infinity, 100, -100, 0])).dataSync()),
        Array.from(tf.sigmoid(tf.tensor1d([Number.NaN, Infinity, -Infinity, 0])).dataSync()),
        Array.from(tf.square(tf.tensor1d([Number.NaN, -Infinity, -3, 0.5])).dataSync()),
      ]);
    const [t, s, q] = await on('wasm', edge);
    expect(t).toEqual([Number.NaN, 1, -1, 1, -1, 0]);
    expect(s).toEqual([Number.NaN, 1, 0, 0.5]);
    expect(q).toEqual([Number.NaN, Infinity, 9, 0.25]);
  });

  it('GatherV2 on axis 0 matches the stock kernel, and other axes still work', async () => {
    await compare((t) =>
      tf.gather(
        t,
        tf.tensor2d(
          [
            [2, 0],
            [1, 1],
          ],
          [2, 2],
          'int32',
        ),
      ),
    );
    await compare((t) => tf.gather(t, tf.tensor1d([4, 0, 2], 'int32'), 2));
  });

  it('GatherV2 refuses an out-of-range index instead of reading past the table', async () => {
    await tf.setBackend('wasm');
    expect(() => tf.tidy(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([0, 3], 'int32')))).toThrow('gather index 3 (position 1) is outside [0, 3)');
  });
});

describe('UnsortedSegmentSum on wasm (native or JS)', () => {
  it('matches the cpu backend and lets embeddings train (the gradient of gather)', async () => {
    const rng = Rng.create(2);
    const table = randomArray(rng, 7 * 3);
    const indices = [0, 3, 3, 6, 1, 3];
    const grad = () =>
      tf.tidy(() =>
        Array.from(
          tf
            .grad((w: tf.Tensor) => tf.sum(tf.square(tf.gather(w, tf.tensor1d(indices, 'int32')))))(tf.tensor(table, [7, 3]))
            .dataSync(),
        ),
      );
    expect(maxRelDiff(await on('wasm', grad), await on('cpu', grad))).toBeLessThan(TOL);
    const direct = () =>
      tf.tidy(() =>
        Array.from(
          tf
            .unsortedSegmentSum(
              tf.tensor2d([
                [1, 2],
                [3, 4],
                [5, 6],
              ]),
              tf.tensor1d([2, -1, 2], 'int32'),
              3,
            )
            .dataSync(),
        ),
      );
    expect(await on('wasm', direct)).toEqual([0, 0, 0, 0, 6, 8]); // id -1 dropped, as TensorFlow does
  });
});

describe('Identity by reference', () => {
  it('shares the data: a clone outlives its source, and no bytes are copied', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(buffers); // stock wasm would have copied into a new buffer
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    const v = tf.variable(tf.tensor1d([4, 5]));
    const saved = tf.clone(v);
    v.assign(tf.tensor1d([6, 7]));
    expect(Array.from(saved.dataSync())).toEqual([4, 5]); // assign swaps buffers, never writes in place
    tf.dispose([y, v, saved]);
  });
});

describe('memory', () => {
  it('keeps numTensors flat over repeated native matmuls and segment sums', async () => {
    await tf.setBackend('wasm');
    const a = tf.randomNormal([4, 8, 16]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      tf.tidy(() => {
        tf.grad((x: tf.Tensor) => tf.sum(tf.matMul(x, x, false, true)))(a);
        tf.grad((w: tf.Tensor) => tf.sum(tf.gather(w, tf.tensor1d([0, 1, 1], 'int32'))))(a);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    a.dispose();
  });
});
