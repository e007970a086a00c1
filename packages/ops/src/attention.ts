import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@skd/core';
import { hasKernel, KERNELS, runKernel } from './kernels';

export interface AttentionOptions {
  /** Rows of the batch: qkv holds batch * T rows. */
  readonly batch: number;
  /** Query heads. */
  readonly heads: number;
  /** Key/value heads (grouped-query attention: each serves heads / kvHeads query heads). Default: heads. */
  readonly kvHeads?: number;
  /** Scale of the scores. Default 1/sqrt(head size). */
  readonly scale?: number;
  /** Soft-capping of the scaled scores: cap * tanh(score / cap) (Gemma 2). Default: none. */
  readonly softcap?: number;
  /** Sliding window: query t sees keys t - window + 1..t only. Default: every earlier key. */
  readonly window?: number;
  /** (B, T): 1 for real tokens, 0 for padding keys. Default: all real. */
  readonly mask?: tf.Tensor2D;
  /** Dropout on the attention weights while training (the composite form runs it). */
  readonly dropout?: { readonly rate: number; readonly seed: number };
}

/** The head geometry of packed projections: q (heads x headSize) | k (kvHeads x headSize) | v (kvHeads x headSize) per row. */
export function attentionGeometry(qkv: tf.Tensor2D, options: AttentionOptions) {
  const { batch, heads } = options;
  const kvHeads = options.kvHeads ?? heads;
  const [rows, width] = qkv.shape;
  const headSize = width / (heads + 2 * kvHeads);
  if (!Number.isInteger(headSize) || heads % kvHeads !== 0 || rows % batch !== 0) {
    throw new ShapeError('packed qkv', `(batch * T, (heads + 2 kvHeads) * headSize) with ${heads} heads, ${kvHeads} kv heads and batch ${batch}`, qkv.shape);
  }
  return {
    rows,
    T: rows / batch,
    heads,
    kvHeads,
    headSize,
    scale: options.scale ?? 1 / Math.sqrt(headSize),
    softcap: options.softcap ?? 0,
    window: options.window ?? 0,
  };
}

/**
 * Causal self-attention over packed projections qkv (B*T, (heads + 2 kvHeads) * headSize): each row
 * holds q|k|v (GPT-2's c_attn layout when kvHeads = heads), scores scaled by `scale` (default
 * 1/sqrt(head size)), optionally soft-capped and windowed → (B*T, heads * headSize), heads merged.
 * Query t sees keys 0..t that are real (and within the window). A query that sees no real key (left
 * padding) has an unspecified output: 0 from the kernel, a uniform mix from the composite form;
 * losses mask it.
 *
 * Kernel `SkdAttention`: inputs { qkv, mask? }, attrs { batch, heads, kvHeads, scale, softcap, window }
 * → [out, lse (B, heads, T)]; `SkdAttentionGrad`: inputs { qkv, mask?, out, lse, dy }, same attrs → dqkv.
 * softcap and window are 0 when off.
 */
export function causalSelfAttention(qkv: tf.Tensor2D, options: AttentionOptions): tf.Tensor2D {
  const g = attentionGeometry(qkv, options);
  const dropping = options.dropout !== undefined && options.dropout.rate > 0;
  if (dropping || !hasKernel(KERNELS.attention)) return attentionComposite(qkv, options);
  const attrs = { batch: options.batch, heads: g.heads, kvHeads: g.kvHeads, scale: g.scale, softcap: g.softcap, window: g.window };
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

/** The composite form (any backend): split heads, share key/value heads, masked softmax, weighted sum, merge heads. */
export function attentionComposite(qkv: tf.Tensor2D, options: AttentionOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const g = attentionGeometry(qkv, options);
    const { batch: B } = options;
    const { T, heads: H, kvHeads: Hkv, headSize: dh } = g;
    const [q2, k2, v2] = tf.split(qkv, [H * dh, Hkv * dh, Hkv * dh], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const q = splitHeads(q2, B, H); // (B, H, T, dh)
    const k = shareHeads(splitHeads(k2, B, Hkv), H); // (B, H, T, dh)
    const v = shareHeads(splitHeads(v2, B, Hkv), H); // (B, H, T, dh)
    const mask = options.mask ? (tf.cast(options.mask, 'float32') as tf.Tensor2D) : (tf.ones([B, T]) as tf.Tensor2D); // (B, T)
    const scores = softcapped(tf.mul(tf.matMul(q, k, false, true), g.scale), g.softcap); // (B, H, T, T)
    let bias = attentionBias(mask, undefined); // (B, 1, T, T)
    if (g.window > 0) bias = tf.add(bias, windowBias(tf.range(0, T, 1, 'int32'), tf.range(0, T, 1, 'int32'), g.window)) as tf.Tensor4D;
    let weights = tf.softmax(tf.add(scores, bias)); // (B, H, T, T)
    if (options.dropout && options.dropout.rate > 0) weights = tf.dropout(weights, options.dropout.rate, undefined, options.dropout.seed);
    return mergeHeads(tf.matMul(weights, v) as tf.Tensor4D); // (B*T, H dh)
  });
}

/** cap * tanh(scores / cap), or the scores themselves when cap is 0. */
export function softcapped<T extends tf.Tensor>(scores: T, cap: number): T {
  return cap > 0 ? (tf.mul(tf.tanh(tf.div(scores, cap)), cap) as T) : scores;
}

/** Key/value heads (B, Hkv, S, dh) repeated for the query heads they serve → (B, H, S, dh). */
export function shareHeads(x: tf.Tensor4D, heads: number): tf.Tensor4D {
  const [B, Hkv, S, dh] = x.shape;
  if (Hkv === heads) return x;
  const group = heads / Hkv;
  return tf.reshape(tf.tile(tf.reshape(x, [B * Hkv, 1, S * dh]), [1, group, 1]), [B, heads, S, dh]) as tf.Tensor4D; // (B, H, S, dh)
}

/**
 * Additive bias (1, 1, S, L) that hides keys at or past `window` positions before each query:
 * query positions (S), key positions (L).
 */
export function windowBias(queryPositions: tf.Tensor1D, keyPositions: tf.Tensor1D, window: number): tf.Tensor4D {
  return tf.tidy(() => {
    const distance = tf.sub(tf.expandDims(queryPositions, 1), tf.expandDims(keyPositions, 0)); // (S, L)
    const hidden = tf.cast(tf.greaterEqual(distance, window), 'float32'); // (S, L)
    const [S, L] = distance.shape as [number, number];
    return tf.reshape(tf.mul(hidden, MASKED), [1, 1, S, L]) as tf.Tensor4D;
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
