import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/** The 16-bit formats a frozen weight may be held in. */
export type HalfDtype = 'bfloat16' | 'float16';

/**
 * A frozen weight matrix held in 16 bits (a teacher's projections, embedding and head): half the
 * memory of float32, and half the bytes each decode step reads. Not a tfjs tensor (tfjs has no 16-bit
 * dtype): the ops below pass it to the kernels whole, and widen it to float32 a tile at a time, so
 * products are float32 products with the 16-bit values. Immutable; nothing to dispose.
 */
export class HalfMatrix {
  private constructor(
    readonly data: Uint16Array,
    readonly shape: readonly [number, number],
    readonly dtype: HalfDtype,
  ) {}

  /** `values` rounded to the nearest 16-bit value (ties to even); exact for values that came from 16 bits. */
  static fromFloat32(values: Float32Array, shape: readonly [number, number], dtype: HalfDtype): HalfMatrix {
    if (values.length !== shape[0] * shape[1]) throw new SkdError(`HalfMatrix: ${values.length} values for shape [${shape.join(', ')}]`);
    return new HalfMatrix(narrowToHalf(values, dtype), [shape[0], shape[1]], dtype);
  }

  /** 16-bit values as they are (`data` is taken over, not copied). */
  static fromBits(data: Uint16Array, shape: readonly [number, number], dtype: HalfDtype): HalfMatrix {
    if (data.length !== shape[0] * shape[1]) throw new SkdError(`HalfMatrix: ${data.length} values for shape [${shape.join(', ')}]`);
    return new HalfMatrix(data, [shape[0], shape[1]], dtype);
  }

  /** The matrix transposed (a new copy), as (columns, rows). */
  transposed(): HalfMatrix {
    const [rows, cols] = this.shape;
    const out = new Uint16Array(rows * cols);
    // In 32 x 32 blocks, so both sides stay in cache.
    for (let r0 = 0; r0 < rows; r0 += 32)
      for (let c0 = 0; c0 < cols; c0 += 32)
        for (let r = r0; r < Math.min(rows, r0 + 32); r++)
          for (let c = c0; c < Math.min(cols, c0 + 32); c++) out[c * rows + r] = this.data[r * cols + c] as number;
    return new HalfMatrix(out, [cols, rows], this.dtype);
  }

  get bytes(): number {
    return this.data.byteLength;
  }

  toFloat32(): Float32Array {
    return widenHalf(this.data, this.dtype);
  }

  /** The matrix as a float32 tensor (the caller disposes it). */
  toTensor(): tf.Tensor2D {
    return tf.tensor2d(this.toFloat32(), [this.shape[0], this.shape[1]]);
  }
}

/** float32 values rounded to 16 bits, to nearest with ties to even (NaN stays NaN, overflow becomes infinity). */
export function narrowToHalf(values: Float32Array, dtype: HalfDtype): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  if (dtype === 'bfloat16') {
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i] as number;
      out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = float16Bits(bits[i] as number);
  }
  return out;
}

/** 16-bit values widened to float32 (exactly). */
export function widenHalf(data: Uint16Array, dtype: HalfDtype): Float32Array {
  const bits = new Uint32Array(data.length);
  if (dtype === 'bfloat16') for (let i = 0; i < data.length; i++) bits[i] = (data[i] as number) << 16;
  else for (let i = 0; i < data.length; i++) bits[i] = float32BitsOfHalf(data[i] as number);
  return new Float32Array(bits.buffer);
}

/** IEEE half bits of the float32 with bits `b`, rounded to nearest, ties to even. */
function float16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exponent = (b >>> 23) & 0xff;
  const mantissa = b & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 112; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A subnormal half (or zero): the significand, implicit bit included, shifted to units of 2^-24.
    if (e < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    const kept = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (kept + (rest > half || (rest === half && kept & 1) ? 1 : 0));
  }
  const kept = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa raises the exponent, and past the largest finite half gives infinity.
  return sign | (kept + (rest > 0x1000 || (rest === 0x1000 && kept & 1) ? 1 : 0));
}

/** float32 bits of the IEEE half with bits `h` (exact). */
function float32BitsOfHalf(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // Subnormal: normalise the significand.
    let e = 113;
    while ((mantissa & 0x400) === 0) {
      mantissa <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
}

export interface LinearHalfOptions {
  /** The weight is stored (out, in) and used transposed (an output head stored as its embedding). */
  readonly transposed?: boolean;
  readonly bias?: tf.Tensor1D;
  readonly residual?: tf.Tensor2D;
}

/**
 * A dense layer over a frozen 16-bit weight: x (N, in) @ w + bias + residual → (N, out), where w is
 * stored (in, out), or (out, in) and used transposed. Float32 products with the 16-bit values; the
 * gradient reaches x (dy wᵀ, through the same kernel the other way round) and the residual, never w.
 *
 * Kernel `SkdLinearHalf`: inputs { x, bias?, residual? }, attrs { weight: HalfMatrix, transposed } → out.
 * Without it (other backends) the weight is widened to a float32 tensor for the call.
 */
export function linearHalf(x: tf.Tensor2D, w: HalfMatrix, options: LinearHalfOptions = {}): tf.Tensor2D {
  const { transposed = false, bias, residual } = options;
  const [N, nIn] = x.shape;
  const [inputs, nOut] = transposed ? [w.shape[1], w.shape[0]] : w.shape;
  if (inputs !== nIn || (bias && bias.shape[0] !== nOut) || (residual && (residual.shape[0] !== N || residual.shape[1] !== nOut))) {
    throw new ShapeError(
      'linearHalf',
      `x (N, in), w (in, out) or transposed (out, in), bias (out), residual (N, out) with x [${x.shape.join(', ')}]`,
      `w [${w.shape.join(', ')}]${transposed ? ' transposed' : ''}`,
    );
  }
  if (!hasKernel(KERNELS.linearHalf)) {
    return tf.tidy(() => {
      const dense = w.toTensor();
      let y = tf.matMul(x, dense, false, transposed) as tf.Tensor2D; // (N, out)
      if (bias) y = tf.add(y, bias);
      return residual ? tf.add(residual, y) : y;
    });
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args[0] as tf.Tensor2D;
    const r = residual ? (args[1] as tf.Tensor2D) : undefined;
    return {
      value: runKernel<tf.Tensor2D>(KERNELS.linearHalf, { x: xs, ...(bias ? { bias } : {}), ...(r ? { residual: r } : {}) }, { weight: w, transposed }),
      gradFunc: (dy: tf.Tensor) => {
        const dx = runKernel<tf.Tensor2D>(KERNELS.linearHalf, { x: dy }, { weight: w, transposed: !transposed }); // (N, in)
        return residual ? [dx, dy] : [dx];
      },
    };
  });
  return op(...(residual ? [x, residual] : [x])) as tf.Tensor2D;
}

/**
 * Rows `ids` of a 16-bit table (an embedding), widened: (n) → (n, width). Kernel `SkdGatherHalf`:
 * inputs { indices }, attrs { table: HalfMatrix } → rows; without it the table is widened for the call.
 */
export function gatherHalf(table: HalfMatrix, ids: tf.Tensor1D): tf.Tensor2D {
  const indices = ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
  try {
    if (hasKernel(KERNELS.gatherHalf)) return runKernel<tf.Tensor2D>(KERNELS.gatherHalf, { indices }, { table });
    return tf.tidy(() => tf.gather(table.toTensor(), indices) as tf.Tensor2D);
  } finally {
    if (indices !== ids) indices.dispose();
  }
}
