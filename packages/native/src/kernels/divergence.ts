import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, requireFloat32, rowsOf, type KernelArgs, type WasmBackendLike } from './wasm';

/** SkdForwardKl: { logP, logits } → [loss, lse], both shaped like the logits without their last axis. */
export function forwardKlKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { logP, logits } = args.inputs as { logP: tf.TensorInfo; logits: tf.TensorInfo };
    requireFloat32('SkdForwardKl', { logP, logits });
    const backend = args.backend as WasmBackendLike;
    const shape = logits.shape.slice(0, -1);
    const loss = backend.makeOutput([...shape], 'float32');
    const lse = backend.makeOutput([...shape], 'float32');
    const { rows, width } = rowsOf(logits);
    if (rows > 0) addon.forwardKl(f32(backend, logP), f32(backend, logits), f32(backend, loss), f32(backend, lse), rows, width);
    return [loss, lse];
  };
}

/** SkdForwardKlGrad: { dy, logP, logits, lse } → dlogits = dy (softmax(logits) - exp(logP)). */
export function forwardKlGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, logP, logits, lse } = args.inputs as Record<string, tf.TensorInfo>;
    requireFloat32('SkdForwardKlGrad', { dy, logP, logits, lse });
    const backend = args.backend as WasmBackendLike;
    const x = logits as tf.TensorInfo;
    const dx = backend.makeOutput([...x.shape], 'float32');
    const { rows, width } = rowsOf(x);
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    if (rows > 0) addon.forwardKlGrad(v(dy), v(logP), v(logits), v(lse), v(dx), rows, width);
    return dx;
  };
}

/** The mixture's weight w and the two terms' weights a, b of SkdMixtureKl (see @skd/ops mixtureKlFromLogits). */
interface MixtureAttrs {
  readonly teacherWeight: number;
  readonly teacherTerm: number;
  readonly studentTerm: number;
}

/** SkdMixtureKl: { logP, logits } → [loss, lse]; attrs { teacherWeight, teacherTerm, studentTerm }. */
export function mixtureKlKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { logP, logits } = args.inputs as { logP: tf.TensorInfo; logits: tf.TensorInfo };
    requireFloat32('SkdMixtureKl', { logP, logits });
    const { teacherWeight, teacherTerm, studentTerm } = args.attrs as unknown as MixtureAttrs;
    const backend = args.backend as WasmBackendLike;
    const shape = logits.shape.slice(0, -1);
    const loss = backend.makeOutput([...shape], 'float32');
    const lse = backend.makeOutput([...shape], 'float32');
    const { rows, width } = rowsOf(logits);
    if (rows > 0) addon.mixtureKl(f32(backend, logP), f32(backend, logits), f32(backend, loss), f32(backend, lse), rows, width, teacherWeight, teacherTerm, studentTerm);
    return [loss, lse];
  };
}

/** SkdMixtureKlGrad: { dy, logP, logits, lse } → dlogits; the forward kernel's attrs. */
export function mixtureKlGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, logP, logits, lse } = args.inputs as Record<string, tf.TensorInfo>;
    requireFloat32('SkdMixtureKlGrad', { dy, logP, logits, lse });
    const { teacherWeight, teacherTerm, studentTerm } = args.attrs as unknown as MixtureAttrs;
    const backend = args.backend as WasmBackendLike;
    const x = logits as tf.TensorInfo;
    const dx = backend.makeOutput([...x.shape], 'float32');
    const { rows, width } = rowsOf(x);
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    if (rows > 0) addon.mixtureKlGrad(v(dy), v(logP), v(logits), v(lse), v(dx), rows, width, teacherWeight, teacherTerm, studentTerm);
    return dx;
  };
}
