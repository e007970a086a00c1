import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { causalSelfAttention, linear, rmsNorm, spreadRows, spreadRowsComposite } from '@skd/ops';
import { loadAddon } from './addon';
import { NativeBackend, poolBytes, pooledSize, registerNativeBackend, registerNativeKernels } from './index';

// The native backend: the same kernels as wasm over tfjs-backend-cpu's storage, with pooled
// outputs. Pooling must never let a buffer change under a tensor or a caller that still holds it.
const available = loadAddon().addon !== undefined;
const randoms = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

async function onBackend<T>(name: 'wasm' | 'native', fn: () => T): Promise<T> {
  await tf.setBackend(name);
  registerNativeKernels({ target: name });
  return fn();
}

(available ? describe : describe.skip)('the native backend', () => {
  beforeAll(async () => {
    await tf.ready();
    registerNativeBackend();
  });

  it('computes what wasm computes: a small network forward and backward', async () => {
    const rng = Rng.create(3);
    const x = randoms(rng, 64 * 96);
    const w = randoms(rng, 96 * 48);
    const g = randoms(rng, 96);
    const run = () =>
      tf.tidy(() => {
        const inputs = [tf.tensor2d(x, [64, 96]), tf.tensor2d(w, [96, 48]), tf.tensor1d(g)];
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(causalSelfAttention(linear(rmsNorm(a as tf.Tensor2D, c as tf.Tensor1D, 1e-6), b as tf.Tensor2D), { batch: 4, heads: 4 }));
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        return [Array.from(value.dataSync()), ...grads.map((t) => Array.from(t.dataSync()))];
      });
    const wasm = await onBackend('wasm', run);
    const native = await onBackend('native', run);
    native.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(v - (wasm[i]?.[j] as number))).toBeLessThan(1e-4 * (1 + Math.abs(v)))));
  });

  it('reuses the buffers of disposed outputs, but never one a caller or another tensor still reads', async () => {
    await onBackend('native', () => undefined);
    const backend = tf.backend() as NativeBackend;
    expect(backend).toBeInstanceOf(NativeBackend);
    const x = tf.randomNormal([256, 256]);
    const w = tf.randomNormal([256, 256]);
    // A caller's array from dataSync stays as it was after its tensor is disposed and the buffer reused.
    const first = linear(x as tf.Tensor2D, w as tf.Tensor2D); // a pooled output (256 KB)
    const read = first.dataSync();
    const before = Float32Array.from(read);
    first.dispose();
    const reusing = Array.from({ length: 4 }, () => linear(w as tf.Tensor2D, x as tf.Tensor2D)); // same size: take pooled buffers
    expect(read).toEqual(before);
    // A tensor that views another's buffer (a slice) keeps it from the pool after the other is disposed.
    const second = linear(x as tf.Tensor2D, w as tf.Tensor2D);
    const view = tf.slice(second, [0, 0], [128, 256]);
    const viewBefore = Float32Array.from(view.dataSync());
    second.dispose();
    const again = Array.from({ length: 4 }, () => linear(w as tf.Tensor2D, x as tf.Tensor2D));
    expect(Float32Array.from(view.dataSync())).toEqual(viewBefore);
    again.push(...reusing);
    tf.dispose([x, w, view, ...again]);
  });

  it('keeps at most SKD_POOL_BYTES of freed outputs (default 1 GiB; 0: none), and refuses a value that is not a byte count', () => {
    expect(poolBytes({})).toBe(2 ** 30);
    expect(poolBytes({ SKD_POOL_BYTES: '268435456' })).toBe(268435456);
    expect(poolBytes({ SKD_POOL_BYTES: '0' })).toBe(0);
    for (const bad of ['256M', '-1', '1.5'])
      expect(() => poolBytes({ SKD_POOL_BYTES: bad })).toThrow(`SKD_POOL_BYTES must be a whole number of bytes >= 0, got "${bad}"`);
    const reuses = (limit: number) => {
      const backend = new NativeBackend(limit);
      const first = backend.allocate('float32', 1 << 16);
      const id = backend.write(first, [1 << 16], 'float32');
      backend.disposeData(id);
      return backend.allocate('float32', 1 << 16).buffer === first.buffer;
    };
    expect(reuses(2 ** 30)).toBe(true); // 256 KiB fits the pool
    expect(reuses(1 << 17)).toBe(false); // it does not fit 128 KiB
    expect(reuses(0)).toBe(false);
    // A run's own size (training.outputPoolBytes): lowering it lets go of what no longer fits.
    const backend = new NativeBackend(2 ** 30);
    const kept = [0, 1].map(() => backend.allocate('float32', 1 << 16));
    kept.forEach((values) => backend.disposeData(backend.write(values, [1 << 16], 'float32')));
    backend.setPoolLimit(1 << 18); // room for one of the two 256 KiB buffers
    expect(backend.poolLimitBytes).toBe(1 << 18);
    const reused = [0, 1].map(() => backend.allocate('float32', 1 << 16).buffer);
    expect(reused.filter((b) => kept.some((k) => k.buffer === b))).toHaveLength(1);
    expect(() => backend.setPoolLimit(-1)).toThrow("the output pool's size must be a whole number of bytes >= 0, got -1");
  });

  it('lets go of the sizes freed least recently when full, so the sizes in use now are kept', () => {
    // A pool of 1 MiB full of 256 KiB buffers (a training step's sizes), then a phase of 192 KiB outputs
    // (a sampling call's): each freed 192 KiB buffer displaces an old one instead of being dropped.
    const backend = new NativeBackend(1 << 20);
    const free = (values: ArrayLike<number> & { length: number }) => backend.disposeData(backend.write(values as Float32Array, [values.length], 'float32'));
    const old = Array.from({ length: 4 }, () => backend.allocate('float32', 1 << 16));
    old.forEach(free);
    const now = backend.allocate('float32', 3 << 14);
    free(now);
    expect(backend.allocate('float32', 3 << 14).buffer).toBe(now.buffer);
    // What was freed most recently of the old size is still there once the new size took its room.
    const reused = Array.from({ length: 4 }, () => backend.allocate('float32', 1 << 16).buffer);
    expect(reused.filter((b) => old.some((o) => o.buffer === b))).toHaveLength(3);
  });

  it('pools outputs from 1 KiB up (a decode step writes hundreds of them), and leaves smaller ones to plain arrays', () => {
    const backend = new NativeBackend(1 << 20);
    const reuses = (count: number) => {
      const first = backend.allocate('float32', count);
      backend.disposeData(backend.write(first, [count], 'float32'));
      return backend.allocate('float32', count).buffer === first.buffer;
    };
    expect(reuses(256)).toBe(true); // 1 KiB
    expect(reuses(2304)).toBe(true); // 9 KiB: a 4-row decode's hidden state at d = 576
    expect(reuses(255)).toBe(false);
  });

  it('reuses a freed buffer for any output of its size class, as a view of exactly the values asked for', async () => {
    // Eight classes per power of two: at most 12.5% over, never under, and small outputs exact.
    for (const bytes of [1000, 1 << 16, (1 << 16) + 4, 300_004, 7_372_800, 2 ** 30 + 4]) {
      expect(pooledSize(bytes)).toBeGreaterThanOrEqual(bytes);
      expect(pooledSize(bytes)).toBeLessThanOrEqual(bytes * 1.125);
    }
    expect(pooledSize(1000)).toBe(1000);
    expect(pooledSize(4 * 89 * 5120)).toBe(pooledSize(4 * 86 * 5120)); // float32 outputs of 89 and 86 rows of 5120 share a class
    const backend = new NativeBackend(2 ** 30);
    const first = backend.allocate('float32', 89 * 5120);
    backend.disposeData(backend.write(first, [89, 5120], 'float32'));
    const second = backend.allocate('float32', 86 * 5120);
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(86 * 5120);
    // Through kernels: outputs of shrinking lengths in one class (458,752 bytes), against the stock cpu backend's.
    const rng = Rng.create(4);
    const w = randoms(rng, 96 * 160);
    const inputs = [716, 690, 667].map((rows) => ({ rows, x: randoms(rng, rows * 96) }));
    const run = () =>
      inputs.map(({ rows, x }) => {
        const y = linear(tf.tensor2d(x, [rows, 96]), tf.tensor2d(w, [96, 160]));
        const values = y.dataSync();
        tf.dispose(y);
        return values;
      });
    await onBackend('native', () => undefined);
    expect(new Set(inputs.map(({ rows }) => pooledSize(rows * 160 * 4))).size).toBe(1);
    const native = tf.tidy(run);
    await tf.setBackend('cpu');
    const cpu = tf.tidy(run);
    native.forEach((values, i) => {
      expect(values).toHaveLength((inputs[i] as { rows: number }).rows * 160);
      values.forEach((v, j) => expect(v).toBeCloseTo(cpu[i]?.[j] as number, 4));
    });
  });

  it('converts cpu storage to the dtype a kernel reads (tfjs-backend-cpu casts int32 to float32 without converting)', async () => {
    await onBackend('native', () => undefined);
    const y = tf.tidy(() =>
      Array.from(rmsNorm(tf.cast(tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32'), 'float32') as tf.Tensor2D, tf.ones([4]), 0).dataSync()),
    );
    const rms = Math.sqrt((1 + 4 + 9 + 16) / 4);
    y.forEach((v, i) => expect(v).toBeCloseTo((i + 1) / rms, 5));
  });

  it('slices, splits, transposes and adds as the stock kernels do (its own kernels for these on cpu storage)', async () => {
    const rng = Rng.create(9);
    const x = randoms(rng, 3 * 5 * 70 * 40);
    const y = randoms(rng, 3 * 5 * 70 * 40);
    const run = () =>
      tf.tidy(() => {
        const a = tf.tensor4d(x, [3, 5, 70, 40]);
        const b = tf.tensor4d(y, [3, 5, 70, 40]);
        return [
          tf.slice(a, [1, 0, 3, 0], [2, 5, 60, 40]),
          tf.slice(a, [0, 2, 0, 5], [3, 2, 70, 30]),
          tf.slice(tf.reshape(a, [210, 200]), [0, 0], [-1, 150]),
          tf.slice(tf.cast(tf.reshape(a, [42000]), 'int32'), [7], [100]),
          ...tf.split(tf.reshape(a, [210, 200]), [120, 47, 33], 1), // Qwen3's q|k|v columns
          ...tf.split(a, [1, 3, 1], 1),
          ...tf.split(tf.cast(a, 'int32'), 2, 2),
          ...tf.split(a, [10, -1], -1),
          tf.transpose(a, [0, 1, 3, 2]),
          tf.transpose(a, [0, 1, 2, 3]),
          tf.transpose(a, [2, 0, 1, 3]),
          tf.add(a, b),
          tf.add(a, tf.ones([40])),
          tf.fill([3, 70, 41], 0),
          tf.fill([5, 300], -2.5),
          tf.fill([7, 9], 4, 'int32'),
        ].map((t) => Array.from(t.dataSync()));
      });
    const cpu = await (async () => {
      await tf.setBackend('cpu');
      return run();
    })();
    const native = await onBackend('native', run);
    native.forEach((values, i) => expect({ i, values }).toEqual({ i, values: cpu[i] }));
    const words = tf.fill([2, 3], 'pad', 'string'); // stock: only numbers go to the pool
    expect(words.arraySync()).toEqual([Array(3).fill('pad'), Array(3).fill('pad')]);
    words.dispose();
  });

  it("spreads rows over slots with zeros at padding (a decode's real slots back in place), into reused buffers", async () => {
    await onBackend('native', () => undefined);
    const rng = Rng.create(12);
    const x = tf.tensor2d(randoms(rng, 5 * 96), [5, 96]);
    // 8 slots over 5 real rows (index 5: padding), one row twice.
    const spread = tf.tensor1d([5, 0, 1, 5, 2, 3, 4, 4], 'int32');
    const expected = Array.from({ length: 8 }, (_, i) => {
      const row = [5, 0, 1, 5, 2, 3, 4, 4][i] as number;
      return row === 5 ? new Array<number>(96).fill(0) : Array.from(x.dataSync().subarray(row * 96, row * 96 + 96));
    }).flat();
    const backend = tf.backend() as NativeBackend;
    // A garbage-filled buffer of the output's size in the pool: the padding rows must still read zeros.
    const dirty = backend.allocate('float32', 8 * 96).fill(7);
    backend.disposeData(backend.write(dirty, [8, 96], 'float32'));
    const y = spreadRows(x, spread);
    expect((backend as unknown as { data: { get(id: tf.DataId): { values: Float32Array } } }).data.get(y.dataId).values.buffer).toBe(dirty.buffer); // the output took it
    expect(Array.from(y.dataSync())).toEqual(expected);
    expect(Array.from(spreadRowsComposite(x, spread).dataSync())).toEqual(expected);
    const past = tf.tensor1d([0, 6], 'int32');
    const floats = tf.tensor1d([0, 1]);
    expect(() => spreadRows(x, past)).toThrow('spread index 6 (position 1) is outside [0, 5]');
    expect(() => spreadRows(x, floats)).toThrow('spreadRows takes int32 row indices, got float32');
    // Under a tape it is the composite form: the gradient reaches the rows each slot read.
    const grad = tf.grad((v: tf.Tensor) => tf.sum(spreadRows(v as tf.Tensor2D, spread)))(x);
    expect(Array.from(tf.sum(grad, 1).dataSync())).toEqual([96, 96, 96, 96, 192]);
    tf.dispose([x, spread, y, grad, past, floats]);
  });

  it('keeps numTensors flat over repeated training-like steps', async () => {
    await onBackend('native', () => undefined);
    const w = tf.variable(tf.randomNormal([64, 64]));
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(linear(tf.ones([32, 64]) as tf.Tensor2D, w as unknown as tf.Tensor2D)), [w]);
        w.assign(tf.sub(w, tf.mul(0.01, grads[w.name] as tf.Tensor)));
      });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
    await tf.setBackend('wasm');
  });
});
