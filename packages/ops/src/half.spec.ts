import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@skd/core';
import { gatherHalf, HalfMatrix, linearHalf, narrowToHalf, widenHalf, type HalfDtype } from './half';

beforeAll(() => tf.setBackend('cpu'));

const allBits = Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNaNBits = (h: number, dtype: HalfDtype) =>
  dtype === 'bfloat16' ? (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0 : (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe.each(['bfloat16', 'float16'] as const)('%s storage', (dtype) => {
  const widened = widenHalf(allBits, dtype);

  it('widens every one of the 65,536 values exactly and narrows each back to itself (NaN stays NaN)', () => {
    const back = narrowToHalf(widened, dtype);
    for (let h = 0; h < 65536; h++) {
      if (isNaNBits(h, dtype)) {
        expect(Number.isNaN(widened[h])).toBe(true);
        expect(isNaNBits(back[h] as number, dtype)).toBe(true);
      } else if (back[h] !== h) throw new Error(`${h.toString(16)} came back as ${(back[h] as number).toString(16)}`);
    }
  });

  it('widens to the values the format defines (1, -2, the largest finite, the smallest subnormal, infinity)', () => {
    const [one, minusTwo, largest, tiny, inf] = dtype === 'bfloat16' ? [0x3f80, 0xc000, 0x7f7f, 0x0001, 0x7f80] : [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00];
    expect(widened[one]).toBe(1);
    expect(widened[minusTwo]).toBe(-2);
    expect(widened[largest]).toBe(dtype === 'bfloat16' ? 3.3895313892515355e38 : 65504);
    expect(widened[tiny]).toBe(dtype === 'bfloat16' ? 9.183549615799121e-41 : 2 ** -24);
    expect(widened[inf]).toBe(Infinity);
  });

  it('rounds float32 values to the nearest 16-bit value, ties to even (against a search over all values)', () => {
    const finite = Array.from(allBits)
      .filter((h) => Number.isFinite(widened[h]))
      .map((h) => ({ h, v: widened[h] as number }))
      .sort((a, b) => a.v - b.v || a.h - b.h);
    const values = finite.map((f) => f.v);
    const rng = Rng.create(3);
    const probes: number[] = [];
    for (let i = 0; i < 4000; i++) {
      // Random magnitudes over the whole range, and exact midpoints between neighbours.
      const k = Math.floor(rng.random() * (finite.length - 1));
      const [a, b] = [values[k] as number, values[k + 1] as number];
      probes.push(i % 2 ? Math.fround(a + (b - a) * rng.random()) : Math.fround((a + b) / 2));
    }
    const narrowed = narrowToHalf(Float32Array.from(probes), dtype);
    probes.forEach((x, i) => {
      let lo = 0;
      let hi = values.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if ((values[mid] as number) <= x) lo = mid;
        else hi = mid;
      }
      const [a, b] = [finite[lo] as { h: number; v: number }, finite[hi] as { h: number; v: number }];
      const da = Math.abs(x - a.v);
      const db = Math.abs(b.v - x);
      // The nearest; at a tie, the one with an even last bit (zero's two signs are the same value).
      const want = da < db ? a.h : db < da ? b.h : (a.h & 1) === 0 ? a.h : b.h;
      const got = narrowed[i] as number;
      if (got !== want && widened[got] !== widened[want]) throw new Error(`${x} narrowed to ${got.toString(16)}, nearest is ${want.toString(16)}`);
    });
  });

  it('overflows to infinity at the midpoint past the largest finite value, and keeps signed zeros', () => {
    // Just below and at the midpoint between the largest finite value and the next power (a tie rounds to even: infinity).
    const midpoint = new Float32Array(new Uint32Array([0x7f7f8000]).buffer)[0] as number;
    const [below, at, largest] = dtype === 'bfloat16' ? [3.39e38, midpoint, 3.3895313892515355e38] : [65519, 65520, 65504];
    const out = narrowToHalf(Float32Array.from([below, -below, at, -at, 0, -0]), dtype);
    expect(Array.from(widenHalf(out, dtype))).toEqual([largest, -largest, Infinity, -Infinity, 0, -0]);
  });
});

describe('ops over 16-bit weights on a backend without their kernels', () => {
  const rng = Rng.create(5);
  const values = Float32Array.from({ length: 6 * 4 }, () => rng.normal());

  it.each([false, true])('linearHalf (transposed %s) is the float32 product with the widened weight, bias and residual added', (transposed) => {
    const w = HalfMatrix.fromFloat32(values, transposed ? [4, 6] : [6, 4], 'bfloat16');
    const x = Float32Array.from({ length: 3 * 6 }, () => rng.normal());
    const dense = w.toFloat32();
    const got = tf.tidy(() =>
      linearHalf(tf.tensor2d(x, [3, 6]), w, { transposed, bias: tf.tensor1d([1, 2, 3, 4]), residual: tf.fill([3, 4], 10) as tf.Tensor2D }).arraySync(),
    );
    for (let r = 0; r < 3; r++)
      for (let j = 0; j < 4; j++) {
        let sum = 10 + (j + 1);
        for (let k = 0; k < 6; k++) sum += (x[r * 6 + k] as number) * (dense[transposed ? j * 6 + k : k * 4 + j] as number);
        expect(got[r]?.[j]).toBeCloseTo(sum, 4);
      }
  });

  it('linearHalf refuses shapes that do not chain, naming both', () => {
    const w = HalfMatrix.fromFloat32(values, [6, 4], 'float16');
    expect(() => linearHalf(tf.zeros([2, 4]) as tf.Tensor2D, w)).toThrow(/x \[2, 4\].*w \[6, 4\]/);
  });

  it('gatherHalf gives the widened rows (gradients: @skd/native holds kernel and composite form equal)', () => {
    const w = HalfMatrix.fromFloat32(values, [6, 4], 'float16');
    const rows = tf.tidy(() => gatherHalf(w, tf.tensor1d([5, 0], 'int32')).arraySync());
    const dense = w.toFloat32();
    expect(rows).toEqual([Array.from(dense.subarray(20, 24)), Array.from(dense.subarray(0, 4))]);
  });
});
