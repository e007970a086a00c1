import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

/** How rotary frequencies are stretched for long contexts (Hugging Face's `rope_scaling` / `rope_parameters`). */
export type RopeScaling =
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      /** The context the model was pre-trained with before the extension. */
      readonly originalContext: number;
    }
  | {
      /** YaRN: each frequency between its interpolated (divided by factor) and original value by a ramp over the dimensions. */
      readonly type: 'yarn';
      readonly factor: number;
      readonly originalContext: number;
      /** Rotations within the original context above which a dimension keeps its frequency (32). */
      readonly betaFast: number;
      /** Rotations below which a dimension is interpolated (1). */
      readonly betaSlow: number;
      /** Round the ramp's ends to whole dimensions (transformers' default, true). */
      readonly truncate: boolean;
      /** The factor cos and sin are multiplied by (0.1 ln(factor) + 1 by default): the model scales its attention scores by its square. */
      readonly attentionFactor: number;
    }
  | {
      /**
       * LongRoPE (Phi-3 128k): each frequency divided by its own factor, the short factors while a
       * forward pass stays within originalContext positions and the long ones past it.
       */
      readonly type: 'longrope';
      readonly shortFactor: readonly number[];
      readonly longFactor: readonly number[];
      readonly originalContext: number;
      /** cos and sin's factor (sqrt(1 + ln(factor) / ln(originalContext)) by default): the scores take its square. */
      readonly attentionFactor: number;
    }
  | {
      /**
       * Dynamic NTK scaling: transformers raises the base only once a sequence passes
       * max_position_embeddings, which is the model's context; within it the frequencies are the
       * unscaled ones, and skd never runs past it.
       */
      readonly type: 'dynamic';
      readonly factor: number;
    };

/**
 * The inverse frequencies of rotary position embedding for heads of size `headDim`:
 * theta^(-2i / headDim) for i < headDim / 2, then scaled as `scaling` says. `linear` divides every
 * frequency by the factor; `llama3` divides the low frequencies (wavelengths past
 * originalContext / lowFreqFactor) by the factor, keeps the high ones (wavelengths under
 * originalContext / highFreqFactor), and interpolates smoothly in between. float32, as
 * transformers computes them. `longrope` takes its long factors when `length` (the forward pass's
 * largest position plus one) passes its original context, its short ones otherwise; `dynamic` is the
 * unscaled frequencies within the model's context.
 */
export function rotaryFrequencies(headDim: number, theta: number, scaling?: RopeScaling, length = 0): Float32Array {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) throw new SkdError(`rotary positions need an even head dimension, got ${headDim}`);
  const base = Array.from({ length: headDim / 2 }, (_, i) => 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
  if (!scaling || scaling.type === 'dynamic') return Float32Array.from(base);
  if (scaling.type === 'longrope') {
    const factors = length > scaling.originalContext ? scaling.longFactor : scaling.shortFactor;
    if (factors.length !== headDim / 2) throw new SkdError(`longrope needs ${headDim / 2} factors (half the head dimension), got ${factors.length}`);
    // 1 / (factor * theta^(2i/d)) in float32, as transformers' longrope init computes it.
    return Float32Array.from({ length: headDim / 2 }, (_, i) =>
      Math.fround(1 / Math.fround(Math.fround(factors[i] as number) * Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))))),
    );
  }
  if (scaling.type === 'linear') return Float32Array.from(base, (f) => Math.fround(f) / scaling.factor);
  if (scaling.type === 'yarn') return yarnFrequencies(headDim, theta, scaling);
  const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
  const lowWavelength = originalContext / lowFreqFactor;
  const highWavelength = originalContext / highFreqFactor;
  return Float32Array.from(base, (raw) => {
    const f = Math.fround(raw);
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highWavelength) return f;
    if (wavelength > lowWavelength) return f / factor;
    const smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** YaRN's frequencies, in float32 step by step as transformers computes them (its `_compute_yarn_parameters`). */
function yarnFrequencies(headDim: number, theta: number, scaling: Extract<RopeScaling, { type: 'yarn' }>): Float32Array {
  const f = Math.fround;
  const { factor, originalContext, betaFast, betaSlow, truncate } = scaling;
  // The dimension whose wavelength fits `rotations` turns into the original context.
  const dimensionOf = (rotations: number) => (headDim * Math.log(originalContext / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = dimensionOf(betaFast);
  let high = dimensionOf(betaSlow);
  if (truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, headDim - 1);
  if (low === high) high += 0.001;
  return Float32Array.from({ length: headDim / 2 }, (_, i) => {
    const position = f(Math.pow(theta, f((2 * i) / headDim)));
    const extrapolated = f(1 / position);
    const interpolated = f(1 / f(factor * position));
    const ramp = f(Math.min(1, Math.max(0, f(f(i - low) / f(high - low)))));
    const keep = f(1 - ramp); // the share of the original frequency
    return f(f(interpolated * f(1 - keep)) + f(extrapolated * keep));
  });
}

/** Where the heads lie in a packed projection row: q (heads x headDim) | k (kvHeads x headDim) | v (kvHeads x headDim). */
export interface PackedHeads {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/**
 * Rotary position embedding (the rotate-half form) on the q and k parts of packed projections
 * qkv (N, (heads + 2 kvHeads) headDim) at positions (N): within each head, the pair
 * (x_i, x_{i + headDim/2}) rotates by the angle position * frequencies[i]. The v part is unchanged.
 *
 * Kernel `SkdRotary`: inputs { x, positions (N) int32, frequencies (headDim/2) }, attrs { heads,
 * kvHeads, headDim, inverse } → y; the gradient is the same kernel with `inverse` (rotation by the
 * opposite angle).
 */
export function rotary(qkv: tf.Tensor2D, positions: tf.Tensor1D, frequencies: tf.Tensor1D, layout: PackedHeads): tf.Tensor2D {
  const { heads, kvHeads, headDim } = layout;
  if (qkv.shape[1] !== (heads + 2 * kvHeads) * headDim || positions.shape[0] !== qkv.shape[0] || frequencies.shape[0] !== headDim / 2) {
    throw new ShapeError('rotary input', `qkv (N, ${(heads + 2 * kvHeads) * headDim}), positions (N), frequencies (${headDim / 2})`, qkv.shape);
  }
  if (positions.dtype !== 'int32') throw new SkdError(`rotary positions must be int32, got ${positions.dtype}`);
  if (!hasKernel(KERNELS.rotary)) return rotaryComposite(qkv, positions, frequencies, layout);
  const attrs = { heads, kvHeads, headDim };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([positions, frequencies]);
    return {
      value: runKernel<tf.Tensor2D>(KERNELS.rotary, { x, positions, frequencies }, { ...attrs, inverse: false }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [p, f] = saved as [tf.Tensor, tf.Tensor];
        return runKernel<tf.Tensor>(KERNELS.rotary, { x: dy, positions: p, frequencies: f }, { ...attrs, inverse: true });
      },
    };
  });
  return op(qkv) as tf.Tensor2D;
}

/** The composite form (any backend). */
export function rotaryComposite(qkv: tf.Tensor2D, positions: tf.Tensor1D, frequencies: tf.Tensor1D, layout: PackedHeads): tf.Tensor2D {
  return tf.tidy(() => {
    const { heads, kvHeads, headDim: dh } = layout;
    const N = qkv.shape[0];
    const angles = tf.mul(tf.expandDims(tf.cast(positions, 'float32'), 1), tf.expandDims(frequencies, 0)); // (N, dh/2)
    const cos = tf.expandDims(tf.cos(angles), 1); // (N, 1, dh/2)
    const sin = tf.expandDims(tf.sin(angles), 1); // (N, 1, dh/2)
    const turn = (x: tf.Tensor2D, n: number): tf.Tensor2D => {
      const [x1, x2] = tf.split(tf.reshape(x, [N, n, dh]), 2, 2) as [tf.Tensor3D, tf.Tensor3D]; // (N, n, dh/2) each
      const rotated = tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], 2); // (N, n, dh)
      return tf.reshape(rotated, [N, n * dh]);
    };
    const [q, k, v] = tf.split(qkv, [heads * dh, kvHeads * dh, kvHeads * dh], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    return tf.concat([turn(q, heads), turn(k, kvHeads), v], 1) as tf.Tensor2D; // (N, (H + 2 Hkv) dh)
  });
}
