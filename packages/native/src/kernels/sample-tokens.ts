import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, type KernelArgs, memoryOf } from './wasm';

interface SampleAttrs {
  readonly uniforms: readonly number[];
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly greedy: boolean;
}

/** SkdSampleTokens: { logits (B, V) }, SampleAttrs → ids (B) int32 (-2: non-finite logits, -3: all -inf). */
export function sampleTokensKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { logits } = args.inputs as { logits: tf.TensorInfo };
    const a = args.attrs as unknown as SampleAttrs;
    requireFloat32('SkdSampleTokens', { logits });
    const [B, V] = logits.shape as [number, number];
    if (logits.shape.length !== 2 || a.uniforms.length !== B)
      throw new Error(`SkdSampleTokens: logits [${logits.shape.join(', ')}] need (B, V) and one uniform per row`);
    const backend = memoryOf(args.backend);
    const ids = backend.makeOutput([B], 'int32');
    addon.sampleTokens(
      f32(backend, logits),
      backend.typedArrayFromHeap(ids) as Int32Array,
      B,
      V,
      Float64Array.from(a.uniforms),
      a.temperature,
      a.topK,
      a.topP,
      a.greedy,
    );
    return ids;
  };
}
