import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

export interface AttentionOptions {
  /** Rows of the batch: qkv holds batch * T rows. */
  readonly batch: number;
  readonly heads: number;
  /** (B, T): 1 for real tokens, 0 for padding keys. Default: all real. */
  readonly mask?: tf.Tensor2D;
  /** Dropout on the attention weights while training (the composite form runs it). */
  readonly dropout?: { readonly rate: number; readonly seed: number };
}

/**
 * Causal self-attention over packed projections: qkv (B*T, 3d), each row q|k|v (GPT-2's c_attn
 * layout), heads of size d / heads, scores scaled by 1/sqrt(head size) → (B*T, d), heads merged.
 * Query t sees keys 0..t that are real. A query that sees no real key (left padding) has an
 * unspecified output: 0 from the kernel, a uniform mix from the composite form; losses mask it.
 *
 * Kernel `SkdAttention`: inputs { qkv, mask? }, attrs { batch, heads, scale } → [out, lse (B, heads, T)];
 * `SkdAttentionGrad`: inputs { qkv, mask?, out, lse, dy }, same attrs → dqkv.
 */
export function causalSelfAttention(qkv: tf.Tensor2D, options: AttentionOptions): tf.Tensor2D {
  const { batch, heads } = options;
  const [rows, width] = qkv.shape;
  if (width % 3 !== 0 || (width / 3) % heads !== 0 || rows % batch !== 0) {
    throw new ShapeError('packed qkv', `(batch * T, 3 * heads * headSize) with ${heads} heads and batch ${batch}`, qkv.shape);
  }
  const dropping = options.dropout !== undefined && options.dropout.rate > 0;
  if (dropping || !hasKernel(KERNELS.attention)) return attentionComposite(qkv, options);
  const attrs = { batch, heads, scale: 1 / Math.sqrt(width / 3 / heads) };
  const mask = options.mask ? (options.mask.dtype === 'float32' ? options.mask : tf.cast(options.mask, 'float32')) : undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const [out, lse] = runKernel<tf.Tensor[]>(KERNELS.attention, mask ? { qkv: x, mask } : { qkv: x }, attrs) as [tf.Tensor2D, tf.Tensor];
    save(mask ? [x, out, lse, mask] : [x, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sOut, sLse, sMask] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        return runKernel<tf.Tensor>(KERNELS.attentionGrad, { qkv: sx, out: sOut, lse: sLse, dy, ...(sMask ? { mask: sMask } : {}) }, attrs);
      },
    };
  });
  try {
    return op(qkv) as tf.Tensor2D;
  } finally {
    if (mask && mask !== options.mask) mask.dispose();
  }
}

/** The composite form (any backend): split heads, masked softmax, weighted sum, merge heads. */
export function attentionComposite(qkv: tf.Tensor2D, options: AttentionOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const { batch: B, heads: H } = options;
    const [rows, width] = qkv.shape;
    const T = rows / B;
    const [q2, k2, v2] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D]; // (B*T, d) each
    const q = splitHeads(q2, B, H); // (B, H, T, dh)
    const k = splitHeads(k2, B, H); // (B, H, T, dh)
    const v = splitHeads(v2, B, H); // (B, H, T, dh)
    const mask = options.mask ? (tf.cast(options.mask, 'float32') as tf.Tensor2D) : (tf.ones([B, T]) as tf.Tensor2D); // (B, T)
    const scale = 1 / Math.sqrt(width / 3 / H);
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), scale), attentionBias(mask, undefined)); // (B, H, T, T)
    let weights = tf.softmax(scores); // (B, H, T, T)
    if (options.dropout && options.dropout.rate > 0) weights = tf.dropout(weights, options.dropout.rate, undefined, options.dropout.seed);
    return mergeHeads(tf.matMul(weights, v) as tf.Tensor4D); // (B*T, d)
  });
}

/** (B*S, d) → (B, H, S, dh). */
export function splitHeads(x: tf.Tensor2D, batch: number, heads: number): tf.Tensor4D {
  const [N, d] = x.shape;
  return tf.transpose(tf.reshape(x, [batch, N / batch, heads, d / heads]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, H, S, dh)
}

/** (B, H, S, dh) → (B*S, d). */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [B, H, S, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * S, H * dh]) as tf.Tensor2D; // (B*S, d)
}

/** Additive attention bias: 0 where allowed, a large negative number elsewhere. */
export const MASKED = -1e9;

/**
 * Bias (B, 1, S, L + S) for S new queries over L earlier keys (validity `pastMask` (B, L)) and the
 * S new keys (validity `mask` (B, S)), causal within the new block.
 */
export function attentionBias(mask: tf.Tensor2D, pastMask: tf.Tensor2D | undefined): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, S] = mask.shape;
    const causal = tf.linalg.bandPart(tf.ones([S, S]), -1, 0); // (S, S) lower triangle
    const fresh = tf.mul(causal, tf.reshape(mask, [B, 1, 1, S])); // (B, 1, S, S)
    const allowed = pastMask
      ? tf.concat([tf.tile(tf.reshape(pastMask, [B, 1, 1, pastMask.shape[1]]), [1, 1, S, 1]), fresh], 3) // (B, 1, S, L+S)
      : fresh;
    return tf.mul(tf.sub(1, allowed), MASKED) as tf.Tensor4D; // (B, 1, S, L+S)
  });
}
