import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, type KernelArgs, type WasmBackendLike } from './wasm';

interface AttentionAttrs {
  readonly batch: number;
  readonly heads: number;
  readonly scale: number;
}

function geometry(kernel: string, qkv: tf.TensorInfo, attrs: AttentionAttrs) {
  const [rows, width] = qkv.shape as [number, number];
  const d = width / 3;
  const T = rows / attrs.batch;
  if (qkv.shape.length !== 2 || !Number.isInteger(d) || !Number.isInteger(T) || d % attrs.heads !== 0) {
    throw new Error(`${kernel}: qkv of shape [${qkv.shape.join(', ')}] is not (batch ${attrs.batch} * T, 3 * ${attrs.heads} heads * headSize)`);
  }
  return { rows, d, T, headSize: d / attrs.heads };
}

/** SkdAttention: { qkv, mask? }, { batch, heads, scale } → [out (B*T, d), lse (B, heads, T)]. */
export function attentionKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { qkv, mask } = args.inputs as { qkv: tf.TensorInfo; mask?: tf.TensorInfo };
    const attrs = args.attrs as unknown as AttentionAttrs;
    requireFloat32('SkdAttention', { qkv, mask });
    const g = geometry('SkdAttention', qkv, attrs);
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([g.rows, g.d], 'float32');
    const lse = backend.makeOutput([attrs.batch, attrs.heads, g.T], 'float32');
    addon.attention(f32(backend, qkv), mask ? f32(backend, mask) : null, f32(backend, out), f32(backend, lse), attrs.batch, g.T, attrs.heads, g.headSize, attrs.scale);
    return [out, lse];
  };
}

/** SkdAttentionGrad: { qkv, mask?, out, lse, dy }, { batch, heads, scale } → dqkv. */
export function attentionGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { qkv, mask, out, lse, dy } = args.inputs as { qkv: tf.TensorInfo; mask?: tf.TensorInfo; out: tf.TensorInfo; lse: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as AttentionAttrs;
    requireFloat32('SkdAttentionGrad', { qkv, mask, out, lse, dy });
    const g = geometry('SkdAttentionGrad', qkv, attrs);
    const backend = args.backend as WasmBackendLike;
    const dqkv = backend.makeOutput([...qkv.shape], 'float32');
    const v = (t: tf.TensorInfo) => f32(backend, t);
    addon.attentionGrad(v(qkv), mask ? v(mask) : null, v(out), v(lse), v(dy), v(dqkv), attrs.batch, g.T, attrs.heads, g.headSize, attrs.scale);
    return dqkv;
  };
}

/**
 * SkdCachedAttention: { qkv (B*S, 3d), keys (B, heads, headSize, capacity), values (B, heads,
 * capacity, headSize), lengths (B), mask (B, S) }, { heads, scale } → (B*S, d). Writes the new keys
 * and values into the cache in place: the cache tensors belong to one decode state (ops'
 * NativeKvCache) and are never shared.
 */
export function cachedAttentionKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { qkv, keys, values, lengths, mask } = args.inputs as Record<string, tf.TensorInfo>;
    const { heads, scale } = args.attrs as { heads: number; scale: number };
    requireFloat32('SkdCachedAttention', { qkv, keys, values, mask });
    const [B, H, headSize, capacity] = (keys as tf.TensorInfo).shape as [number, number, number, number];
    const [rows, width] = (qkv as tf.TensorInfo).shape as [number, number];
    if (H !== heads || width !== 3 * heads * headSize || rows % B !== 0 || (lengths as tf.TensorInfo).dtype !== 'int32') {
      throw new Error(`SkdCachedAttention: qkv [${(qkv as tf.TensorInfo).shape.join(', ')}] does not fit the cache [${(keys as tf.TensorInfo).shape.join(', ')}]`);
    }
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([rows, width / 3], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    addon.cachedAttention(v(qkv), v(keys), v(values), backend.typedArrayFromHeap(lengths as tf.TensorInfo) as Int32Array, v(mask), v(out), B, rows / B, heads, headSize, capacity, scale);
    return out;
  };
}
