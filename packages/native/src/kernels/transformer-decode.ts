import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, i32, type KernelArgs, type WasmBackendLike } from './wasm';

interface DecodeAttrs {
  readonly layers: number;
  readonly heads: number;
  readonly dModel: number;
  readonly dFf: number;
  readonly vocab: number;
  readonly capacity: number;
  readonly contextRows: number;
  readonly epsilon: number;
  readonly rotary: boolean;
  readonly lastOnly: boolean;
  readonly parameterCount: number;
}

/** SkdTransformerDecode: one GPT decode step over the native KV cache (see @skd/ops transformerDecode). */
export function transformerDecodeKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as DecodeAttrs;
    const tokens = inputs['tokens'] as tf.TensorInfo;
    const [B, S] = tokens.shape as [number, number];
    for (const [name, t] of Object.entries(inputs)) {
      const want = name === 'tokens' || name === 'positions' || name === 'lengths' ? 'int32' : 'float32';
      if (t.dtype !== want) throw new Error(`SkdTransformerDecode: input ${name} must be ${want}, got ${t.dtype}`);
    }
    const backend = args.backend as WasmBackendLike;
    const logits = backend.makeOutput([a.lastOnly ? B : B * S, a.vocab], 'float32');
    const view = (name: string) => f32(backend, inputs[name] as tf.TensorInfo);
    const params = Array.from({ length: a.parameterCount }, (_, i) => view(`p${i}`));
    const keys = Array.from({ length: a.layers }, (_, i) => view(`k${i}`));
    const values = Array.from({ length: a.layers }, (_, i) => view(`v${i}`));
    addon.gptDecode(
      params,
      i32(backend, tokens),
      i32(backend, inputs['positions'] as tf.TensorInfo),
      view('mask'),
      i32(backend, inputs['lengths'] as tf.TensorInfo),
      keys,
      values,
      f32(backend, logits),
      B,
      S,
      a.layers,
      a.heads,
      a.dModel,
      a.dFf,
      a.vocab,
      a.capacity,
      a.contextRows,
      a.epsilon,
      a.rotary,
      a.lastOnly,
    );
    return logits;
  };
}
