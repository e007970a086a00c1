import * as tf from '@tensorflow/tfjs-core';

/** x (N, in) @ w (in, out) + b (out) → (N, out). Plain 2D matmul: the fast path on every backend. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w), b); // (N, out)
}

/** LayerNorm over the last axis: x (N, d) → (N, d). */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true); // (N, 1) each
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))); // (N, d)
  return tf.add(tf.mul(normed, gamma), beta); // (N, d)
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2's "gelu_new"). */
export function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/**
 * Rotary position embedding (the rotate-half form) on x (B, H, S, dh) at positions (B, S):
 * each pair (x_i, x_{i + dh/2}) rotates by angle position * base^(-2i/dh).
 */
export function applyRotary(x: tf.Tensor4D, positions: tf.Tensor2D, base = 10000): tf.Tensor4D {
  const dh = x.shape[3];
  const half = dh / 2;
  const invFreq = tf.tensor1d(Array.from({ length: half }, (_, i) => Math.pow(base, (-2 * i) / dh))); // (dh/2)
  const angles = tf.mul(tf.expandDims(tf.cast(positions, 'float32'), 2), invFreq); // (B, S, dh/2)
  const cos = tf.expandDims(tf.cos(angles), 1); // (B, 1, S, dh/2)
  const sin = tf.expandDims(tf.sin(angles), 1); // (B, 1, S, dh/2)
  const [x1, x2] = tf.split(x, 2, 3) as [tf.Tensor4D, tf.Tensor4D]; // (B, H, S, dh/2) each
  return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], 3) as tf.Tensor4D; // (B, H, S, dh)
}

/** (B*S, d) → (B, H, S, dh). */
export function splitHeads(x: tf.Tensor2D, batch: number, heads: number): tf.Tensor4D {
  const [N, d] = x.shape;
  const steps = N / batch;
  return tf.transpose(tf.reshape(x, [batch, steps, heads, d / heads]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, H, S, dh)
}

/** (B, H, S, dh) → (B*S, d). */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [B, H, S, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * S, H * dh]) as tf.Tensor2D; // (B*S, d)
}

/** Additive attention bias: 0 where allowed, a large negative number elsewhere. */
export const MASKED = -1e9;

/**
 * Bias (B, 1, S, L + S) for S new queries over L cached keys (validity `pastMask` (B, L)) and the S
 * new keys (validity `mask` (B, S)), causal within the new block.
 */
export function attentionBias(mask: tf.Tensor2D, pastMask: tf.Tensor2D | undefined): tf.Tensor4D {
  const [B, S] = mask.shape;
  const causal = tf.linalg.bandPart(tf.ones([S, S]), -1, 0); // (S, S) lower triangle
  const fresh = tf.mul(causal, tf.reshape(mask, [B, 1, 1, S])); // (B, 1, S, S)
  const allowed = pastMask
    ? tf.concat([tf.tile(tf.reshape(pastMask, [B, 1, 1, pastMask.shape[1]]), [1, 1, S, 1]), fresh], 3) // (B, 1, S, L+S)
    : fresh;
  return tf.mul(tf.sub(1, allowed), MASKED) as tf.Tensor4D; // (B, 1, S, L+S)
}
