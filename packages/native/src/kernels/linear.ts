import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, type KernelArgs, memoryOf } from './wasm';

/** SkdLinear: { x (N, in), w (in, out), bias?, residual? } → residual + x w + bias. */
export function linearKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, w, bias, residual } = args.inputs as { x: tf.TensorInfo; w: tf.TensorInfo; bias?: tf.TensorInfo; residual?: tf.TensorInfo };
    requireFloat32('SkdLinear', { x, w, bias, residual });
    const [N, nIn] = x.shape as [number, number];
    const nOut = w.shape[1] as number;
    const backend = memoryOf(args.backend);
    const out = backend.makeOutput([N, nOut], 'float32');
    addon.linear(f32(backend, x), f32(backend, w), bias ? f32(backend, bias) : null, residual ? f32(backend, residual) : null, f32(backend, out), N, nIn, nOut);
    return out;
  };
}

/** SkdLinearGrad: { dy, x, w }, { bias } → [dx, dw, dbias if bias]. */
export function linearGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { dy, x, w } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; w: tf.TensorInfo };
    const { bias } = args.attrs as { bias: boolean };
    requireFloat32('SkdLinearGrad', { dy, x, w });
    const [N, nIn] = x.shape as [number, number];
    const nOut = w.shape[1] as number;
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([N, nIn], 'float32');
    const dw = backend.makeOutput([nIn, nOut], 'float32');
    const db = bias ? backend.makeOutput([nOut], 'float32') : undefined;
    addon.linearGrad(f32(backend, dy), f32(backend, x), f32(backend, w), f32(backend, dx), f32(backend, dw), db ? f32(backend, db) : null, N, nIn, nOut);
    return db ? [dx, dw, db] : [dx, dw];
  };
}
