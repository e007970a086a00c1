import type * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon';
import { f32, i32, requireFloat32, rowsOf, type KernelArgs, memoryOf } from './wasm';

/** SkdLogSoftmax: { x } → y over the last axis. */
export function logSoftmaxKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    requireFloat32('SkdLogSoftmax', { x });
    const backend = memoryOf(args.backend);
    const y = backend.makeOutput([...x.shape], 'float32');
    const { rows, width } = rowsOf(x);
    if (rows > 0) addon.logSoftmax(f32(backend, x), f32(backend, y), rows, width);
    return y;
  };
}

/** SkdLogSoftmaxGrad: { dy, y } → dy - exp(y) sum(dy). */
export function logSoftmaxGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, y } = args.inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
    requireFloat32('SkdLogSoftmaxGrad', { dy, y });
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([...y.shape], 'float32');
    const { rows, width } = rowsOf(y);
    if (rows > 0) addon.logSoftmaxGrad(f32(backend, dy), f32(backend, y), f32(backend, dx), rows, width);
    return dx;
  };
}

/** SkdCrossEntropy: { logits, targets } → [loss, lse], both shaped like targets. */
export function crossEntropyKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { logits, targets } = args.inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
    requireFloat32('SkdCrossEntropy', { logits });
    const backend = memoryOf(args.backend);
    const shape = logits.shape.slice(0, -1);
    const loss = backend.makeOutput([...shape], 'float32');
    const lse = backend.makeOutput([...shape], 'float32');
    const { rows, width } = rowsOf(logits);
    const ids = i32(backend, targets);
    const bad = rows > 0 ? addon.crossEntropy(f32(backend, logits), ids, f32(backend, loss), f32(backend, lse), rows, width) : -1;
    if (bad >= 0) throw new Error(`cross-entropy target ${ids[bad]} (position ${bad}) is outside the vocabulary [0, ${width})`);
    return [loss, lse];
  };
}

/** SkdCrossEntropyGrad: { dy, logits, targets, lse } → (softmax - onehot) dy. */
export function crossEntropyGradKernel(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { dy, logits, targets, lse } = args.inputs as Record<string, tf.TensorInfo>;
    requireFloat32('SkdCrossEntropyGrad', { dy, logits, lse });
    const backend = memoryOf(args.backend);
    const dx = backend.makeOutput([...(logits as tf.TensorInfo).shape], 'float32');
    const { rows, width } = rowsOf(logits as tf.TensorInfo);
    const v = (t: tf.TensorInfo | undefined) => f32(backend, t as tf.TensorInfo);
    if (rows > 0) addon.crossEntropyGrad(v(dy), v(logits), i32(backend, targets as tf.TensorInfo), v(lse), v(dx), rows, width);
    return dx;
  };
}
