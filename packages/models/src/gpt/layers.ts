import * as tf from '@tensorflow/tfjs-core';

/**
 * Rotary position embedding (the rotate-half form) on the q and k parts of packed projections
 * qkv (N, 3d) at positions (N): within each head, every pair (x_i, x_{i + dh/2}) rotates by the angle
 * position * base^(-2i/dh). The v part is unchanged.
 */
export function applyRotary(qkv: tf.Tensor2D, positions: tf.Tensor1D, heads: number, base = 10000): tf.Tensor2D {
  return tf.tidy(() => {
    const [N, width] = qkv.shape;
    const dh = width / 3 / heads;
    const half = dh / 2;
    const invFreq = tf.tensor1d(Array.from({ length: half }, (_, i) => Math.pow(base, (-2 * i) / dh))); // (dh/2)
    const angles = tf.mul(tf.expandDims(tf.cast(positions, 'float32'), 1), invFreq); // (N, dh/2)
    const cos = tf.reshape(tf.cos(angles), [N, 1, 1, half]); // (N, 1, 1, dh/2)
    const sin = tf.reshape(tf.sin(angles), [N, 1, 1, half]); // (N, 1, 1, dh/2)
    const [qk, v] = tf.split(tf.reshape(qkv, [N, 3, heads, dh]), [2, 1], 1) as [tf.Tensor4D, tf.Tensor4D]; // (N, 2, H, dh), (N, 1, H, dh)
    const [x1, x2] = tf.split(qk, 2, 3) as [tf.Tensor4D, tf.Tensor4D]; // (N, 2, H, dh/2) each
    const rotated = tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], 3); // (N, 2, H, dh)
    return tf.reshape(tf.concat([rotated, v], 1), [N, width]) as tf.Tensor2D; // (N, 3d)
  });
}
