import type * as tf from '@tensorflow/tfjs-core';
import type { HalfMatrix } from '@skd/ops';
import type { NativeAddon } from '../addon';
import { f32, i32, requireFloat32, size, type KernelArgs, memoryOf } from './wasm';

const KIND = { bfloat16: 0, float16: 1 } as const;

/** SkdLinearHalf: { x (N, in), bias?, residual? }, { weight: HalfMatrix, transposed } → residual + x op(weight) + bias. */
export function linearHalfKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, bias, residual } = args.inputs as { x: tf.TensorInfo; bias?: tf.TensorInfo; residual?: tf.TensorInfo };
    const { weight, transposed } = args.attrs as unknown as { weight: HalfMatrix; transposed: boolean };
    requireFloat32('SkdLinearHalf', { x, bias, residual });
    const [N, nIn] = x.shape as [number, number];
    const nOut = transposed ? weight.shape[0] : weight.shape[1];
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([N, nOut], 'float32');
    addon.linearHalf(
      f32(backend, x),
      weight.data,
      KIND[weight.dtype],
      transposed,
      bias ? f32(backend, bias) : null,
      residual ? f32(backend, residual) : null,
      f32(backend, out),
      N,
      nIn,
      nOut,
    );
    return out;
  };
}

/** SkdGatherHalf: { indices (int32) }, { table: HalfMatrix } → the rows, widened. */
export function gatherHalfKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { indices } = args.inputs as { indices: tf.TensorInfo };
    const { table } = args.attrs as unknown as { table: HalfMatrix };
    const [rows, inner] = table.shape;
    const count = size(indices.shape);
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([...indices.shape, inner], 'float32');
    const ids = i32(backend, indices);
    const bad = addon.gatherHalf(table.data, KIND[table.dtype], ids, f32(backend, out), count, inner, rows);
    if (bad >= 0) throw new Error(`gather index ${ids[bad]} (position ${bad}) is outside [0, ${rows})`);
    return out;
  };
}
