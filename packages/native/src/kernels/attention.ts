import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, type KernelArgs, memoryOf } from './wasm';

interface AttentionAttrs {
  readonly batch: number;
  readonly heads: number;
  readonly kvHeads?: number;
  readonly scale: number;
  readonly softcap?: number;
  readonly window?: number;
}

function geometry(kernel: string, qkv: tf.TensorInfo, attrs: AttentionAttrs) {
  const [rows, width] = qkv.shape as [number, number];
  const kvHeads = attrs.kvHeads ?? attrs.heads;
  const headSize = width / (attrs.heads + 2 * kvHeads);
  const T = rows / attrs.batch;
  if (qkv.shape.length !== 2 || !Number.isInteger(headSize) || !Number.isInteger(T) || attrs.heads % kvHeads !== 0) {
    throw new Error(
      `${kernel}: qkv of shape [${qkv.shape.join(', ')}] is not (batch ${attrs.batch} * T, (${attrs.heads} heads + 2 * ${kvHeads} kv heads) * headSize)`,
    );
  }
  return { rows, d: attrs.heads * headSize, T, kvHeads, headSize, softcap: attrs.softcap ?? 0, window: attrs.window ?? 0 };
}

/** SkdAttention: { qkv, mask? }, { batch, heads, kvHeads, scale, softcap, window } → [out (B*T, heads * headSize), lse (B, heads, T)]. */
export function attentionKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { qkv, mask } = args.inputs as { qkv: tf.TensorInfo; mask?: tf.TensorInfo };
    const attrs = args.attrs as unknown as AttentionAttrs;
    requireFloat32('SkdAttention', { qkv, mask });
    const g = geometry('SkdAttention', qkv, attrs);
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([g.rows, g.d], 'float32');
    const lse = backend.makeOutput([attrs.batch, attrs.heads, g.T], 'float32');
    addon.attention(
      f32(backend, qkv),
      mask ? f32(backend, mask) : null,
      f32(backend, out),
      f32(backend, lse),
      attrs.batch,
      g.T,
      attrs.heads,
      g.kvHeads,
      g.headSize,
      attrs.scale,
      g.softcap,
      g.window,
    );
    return [out, lse];
  };
}

/** SkdAttentionGrad: { qkv, mask?, out, lse, dy }, same attrs as SkdAttention → dqkv. */
export function attentionGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { qkv, mask, out, lse, dy } = args.inputs as { qkv: tf.TensorInfo; mask?: tf.TensorInfo; out: tf.TensorInfo; lse: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as AttentionAttrs;
    requireFloat32('SkdAttentionGrad', { qkv, mask, out, lse, dy });
    const g = geometry('SkdAttentionGrad', qkv, attrs);
    const backend = memoryOf(args.backend);
    const dqkv = backend.makeOutput([...qkv.shape], 'float32');
    const v = (t: tf.TensorInfo) => f32(backend, t);
    addon.attentionGrad(
      v(qkv),
      mask ? v(mask) : null,
      v(out),
      v(lse),
      v(dy),
      v(dqkv),
      attrs.batch,
      g.T,
      attrs.heads,
      g.kvHeads,
      g.headSize,
      attrs.scale,
      g.softcap,
      g.window,
    );
    return dqkv;
  };
}

/**
 * SkdCachedAttention: { qkv (B*S, (heads + 2 kvHeads) headSize), keys (B, kvHeads, headSize,
 * capacity), values (B, kvHeads, capacity, headSize), lengths (B), mask (B, S) }, { heads, kvHeads,
 * scale, softcap, window } → (B*S, heads headSize). Writes the new keys and values into the cache in
 * place: the cache tensors belong to one decode state (ops' NativeKvCache) and are never shared.
 */
export function cachedAttentionKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { qkv, keys, values, lengths, mask } = args.inputs as Record<string, tf.TensorInfo>;
    const attrs = args.attrs as { heads: number; kvHeads?: number; scale: number; softcap?: number; window?: number };
    requireFloat32('SkdCachedAttention', { qkv, keys, values, mask });
    const [B, Hkv, headSize, capacity] = (keys as tf.TensorInfo).shape as [number, number, number, number];
    const [rows, width] = (qkv as tf.TensorInfo).shape as [number, number];
    const { heads } = attrs;
    if (Hkv !== (attrs.kvHeads ?? heads) || width !== (heads + 2 * Hkv) * headSize || rows % B !== 0 || (lengths as tf.TensorInfo).dtype !== 'int32') {
      throw new Error(
        `SkdCachedAttention: qkv [${(qkv as tf.TensorInfo).shape.join(', ')}] does not fit the cache [${(keys as tf.TensorInfo).shape.join(', ')}]`,
      );
    }
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([rows, heads * headSize], 'float32');
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    const ints = backend.typedArrayFromHeap(lengths as tf.TensorInfo) as Int32Array;
    addon.cachedAttention(
      v(qkv),
      v(keys),
      v(values),
      ints,
      v(mask),
      v(out),
      B,
      rows / B,
      heads,
      Hkv,
      headSize,
      capacity,
      attrs.scale,
      attrs.softcap ?? 0,
      attrs.window ?? 0,
    );
    return out;
  };
}
